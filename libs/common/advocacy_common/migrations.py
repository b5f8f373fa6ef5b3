"""Alembic, the same way in every service.

Each service keeps ``<package>/migrations/`` with a three-line ``env.py`` that calls
:func:`run_env` with its metadata, and ``versions/``. :func:`upgrade` applies them
programmatically (the ``migrate`` command, the dev stack, tests, the init container of every
Kubernetes pod: ADR 0008). Online runs hold a PostgreSQL advisory lock, so of several processes
started at once one migrates and the others wait, then find the schema at head.

Alembic (and Mako) is imported only inside the functions that run migrations: a serving process
needs only the code's heads, which :func:`code_revisions` reads from the revision files' source
(10 MB of resident memory saved in every process, issue 19).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger("advocacy.migrations")

#: The advisory lock every online migration holds (per database: each service has its own).
MIGRATION_LOCK_ID = int.from_bytes(hashlib.sha256(b"advocacy-migrate").digest()[:8], "big", signed=True)
#: Between two tries for the lock. The waiters poll with pg_try_advisory_lock on an idle autocommit
#: connection instead of blocking in pg_advisory_lock: a blocked statement keeps its snapshot, and a
#: migration building an index CONCURRENTLY waits for every older snapshot (a deadlock).
LOCK_POLL_SECONDS = 1.0


def alembic_config(package: str, database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(package: str, database_url: str, revision: str = "head", *, sql: bool = False) -> None:
    """Apply the migrations (``sql``: print the SQL instead, for a DBA to review or run)."""
    from alembic import command

    command.upgrade(alembic_config(package, database_url), revision, sql=sql)


# -- where a database stands against the code ------------------------------------------------------------
CURRENT, BEHIND, AHEAD, EMPTY = "current", "behind", "ahead", "empty"


def _script(package: str) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(package, ""))


def code_revisions(package: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the code's heads, every revision the code knows), as Alembic's ``ScriptDirectory`` finds them
    (a unit test compares the two for every service), without importing Alembic or the revisions: each
    file's module-level ``revision`` and ``down_revision`` literals are read with :mod:`ast`. A head is
    a revision no other one names as its ``down_revision`` (``depends_on`` does not count, as in
    Alembic)."""
    downs: dict[str, tuple[str, ...]] = {}
    for path in _revision_files(resources.files(package) / "migrations" / "versions"):
        revision, down = _revision_ids(path.read_text(encoding="utf-8"), path.name)
        if revision in downs:
            raise ValueError(f"{package}: revision {revision!r} is defined twice")
        downs[revision] = down
    named = {d for down in downs.values() for d in down}
    return frozenset(downs.keys() - named), frozenset(downs)


def _revision_files(versions: Traversable) -> list[Traversable]:
    """The revision scripts Alembic would load: ``*.py`` in ``versions/``, without ``__init__.py`` or
    an editor's ``.#`` lock file."""
    if not versions.is_dir():
        return []
    return sorted(
        (
            f
            for f in versions.iterdir()
            if f.is_file() and f.name.endswith(".py") and f.name != "__init__.py" and not f.name.startswith(".#")
        ),
        key=lambda f: f.name,
    )


def _revision_ids(source: str, name: str) -> tuple[str, tuple[str, ...]]:
    """(``revision``, the ``down_revision`` ids) of one revision script; a value that is not a literal
    string, tuple of strings or None is refused (Alembic would import the module to read it)."""
    values: dict[str, object] = {}
    for node in ast.parse(source, filename=name).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(f"{name}: {target.id} is not a literal") from None
    revision, down = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str):
        raise ValueError(f"{name}: no literal string revision")
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    if isinstance(down, (tuple, list)) and all(isinstance(d, str) for d in down):
        return revision, tuple(down)
    raise ValueError(f"{name}: down_revision is not a string, a tuple of strings or None")


def history(package: str) -> list[str]:
    """The code's revisions, newest first: ``<revision>  <message>``."""
    return [f"{r.revision}  {r.doc}" for r in _script(package).walk_revisions()]


def schema_state(database_revisions: set[str], heads: frozenset[str], known: frozenset[str]) -> str:
    """``current``: the database is at the code's head. ``ahead``: it holds a revision this code
    does not know (a newer release migrated it; the old code keeps serving during the rollout,
    since migrations are expand-then-contract). ``behind``: the code expects a newer schema, so the
    process is not ready. ``empty``: never migrated."""
    if not database_revisions:
        return EMPTY
    if database_revisions == heads:
        return CURRENT
    if database_revisions - known:
        return AHEAD
    return BEHIND


async def database_revisions(conn: AsyncConnection) -> set[str]:
    """The revisions recorded in ``alembic_version`` (none when the table does not exist)."""
    exists = await conn.scalar(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL"))
    if not exists:
        return set()
    return {str(v) for v in (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars()}


def _async_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url


def run_env(metadata: sa.MetaData) -> None:
    """Body of every service's migrations/env.py (online mode on asyncpg; offline mode, ``--sql``,
    prints the SQL)."""
    from alembic import context

    config = context.config
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL for migrations")
    if context.is_offline_mode():
        context.configure(
            url=url.replace("+asyncpg", ""), target_metadata=metadata, literal_binds=True, compare_type=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def _run(connection: Any) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def _main() -> None:
        engine = create_async_engine(_async_url(url))
        try:
            async with _migration_lock(engine), engine.connect() as conn:
                await conn.run_sync(_run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(_main())


@contextlib.asynccontextmanager
async def _migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Holds :data:`MIGRATION_LOCK_ID` on a connection of its own (autocommit: idle while held)."""
    conn = await (await engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
    try:
        try_lock = sa.select(sa.func.pg_try_advisory_lock(MIGRATION_LOCK_ID))
        waited = False
        while not await conn.scalar(try_lock):
            if not waited:
                log.info("another process is migrating this database: waiting for it")
                waited = True
            await asyncio.sleep(LOCK_POLL_SECONDS)
        yield
        await conn.scalar(sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK_ID)))
    finally:
        await conn.close()  # to the pool: engine.dispose() ends the session (and any lock left)


# -- the library's own tables, migrated the same way in every service ----------------------------------
def add_outbox_parking() -> None:
    """The outbox's parking columns and index (advocacy_common.db.OUTBOX, ADR 0007)."""
    from alembic import op

    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("park_reason", sa.Text(), nullable=True))
    op.create_index("ix_outbox_parked", "outbox", ["topic", "key"], postgresql_where=sa.text("parked_at IS NOT NULL"))


def drop_outbox_parking() -> None:
    from alembic import op

    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_column("outbox", "park_reason")
    op.drop_column("outbox", "parked_at")


def add_audit_log() -> None:
    """The audit log of admin actions (advocacy_common.audit.AUDIT_LOG, issue 13)."""
    from alembic import op
    from sqlalchemy.dialects.postgresql import JSONB

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("before", JSONB(), nullable=True),
        sa.Column("after", JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def drop_audit_log() -> None:
    from alembic import op

    op.drop_table("audit_log")


def add_erasure_tombstones() -> None:
    """The keyed erasure tombstones and the key every replica reads (advocacy_common.tombstones), and
    a random key made once. A downgrade leaves them (they must still be found after a re-upgrade), so
    the tables are created only where they are missing; ``--sql`` (offline) writes them out."""
    import secrets

    from alembic import context, op

    existing: set[str] = set()
    if not context.is_offline_mode():
        existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "erasures" not in existing:
        op.create_table(
            "erasures",
            sa.Column("tenant_id", sa.Text(), nullable=False),
            sa.Column("employee_hash", sa.Text(), nullable=False),
            sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("tenant_id", "employee_hash"),
        )
    if "service_secrets" not in existing:
        op.create_table(
            "service_secrets",
            sa.Column("name", sa.Text(), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    op.execute(
        sa.text(
            "INSERT INTO service_secrets (name, value) VALUES ('pseudonym_key', :value) ON CONFLICT DO NOTHING"
        ).bindparams(value=secrets.token_urlsafe(48))
    )
