"""Alembic, the same way in every service.

Each service keeps ``<package>/migrations/`` with a three-line ``env.py`` that calls
:func:`run_env` with its metadata, and ``versions/``. :func:`upgrade` applies them
programmatically (the ``migrate`` command, the dev stack, tests, the Kubernetes Job).
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(package: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(package: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(package, database_url), revision)


def _async_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url


def run_env(metadata: sa.MetaData) -> None:
    """Body of every service's migrations/env.py (online mode, asyncpg)."""
    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL for migrations")

    def _run(connection: Any) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def _main() -> None:
        engine = create_async_engine(_async_url(url))
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(_main())
