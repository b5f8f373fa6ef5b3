"""Safe rollouts (issue 15): a pod whose code expects a newer schema than its database holds is not
Ready; a database a newer release already migrated (a revision this code does not know) is, so old
pods keep serving during a rollout. And ``migrate current | check | history | --sql``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.db import make_engine
from advocacy_common.migrations import code_revisions, upgrade
from advocacy_content.app import create_app
from advocacy_content.settings import ContentSettings
from advocacy_dev.devstack.net import free_port

pytestmark = pytest.mark.integration


@asynccontextmanager
async def serving(database_url: str, jwks: str) -> AsyncIterator[str]:
    settings = ContentSettings(
        database_url=database_url, role="api", dev_mode=True, jwt_jwks_path=jwks, log_json=False, log_level="WARNING"
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def _ready(base: str) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get("/readyz")
    return r.status_code, r.json()["checks"]


def _migrate(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTENT_DATABASE_URL": database_url, "DEV_MODE": "true"}
    return subprocess.run(
        [sys.executable, "-m", "advocacy_content", "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_ready_only_at_or_ahead_of_the_codes_schema(new_database: str, dev_keys: DevKeys) -> None:
    jwks = str(dev_keys.jwks_path)
    (head,), known = code_revisions("advocacy_content")
    await asyncio.to_thread(upgrade, "advocacy_content", new_database, "0003")
    async with serving(new_database, jwks) as base:
        assert await _ready(base) == (503, {"database": "ok", "schema": "behind"})
        assert _migrate(new_database, "check").returncode == 1
        await asyncio.to_thread(upgrade, "advocacy_content", new_database)
        assert await _ready(base) == (200, {"database": "ok", "schema": "current"})
        assert _migrate(new_database, "check").returncode == 0
        engine = make_engine(new_database, pool_size=1)
        try:
            async with engine.begin() as conn:  # a newer release migrated past this code's head
                await conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
        finally:
            await engine.dispose()
        assert "f00d" not in known
        assert await _ready(base) == (200, {"database": "ok", "schema": "ahead"})
    current = _migrate(new_database, "current")
    assert current.returncode == 0 and "f00d (ahead)" in current.stdout
    history = _migrate(new_database, "history")
    assert history.stdout.splitlines()[0].startswith(f"{head}  ")
    sql = _migrate(new_database, "--sql")
    assert sql.returncode == 0 and "ALTER TABLE outbox ADD COLUMN parked_at" in sql.stdout, sql.stderr[-2000:]
