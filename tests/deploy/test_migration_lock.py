"""Issue 15: `migrate` runs in every pod's init container (ADR 0008), so a rollout starts it several
times at once on one database: an advisory lock lets one migrate while the others wait."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from advocacy_common import migrations

if TYPE_CHECKING:
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres

PACKAGE = "advocacy_sharing"


async def _revisions(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await migrations.database_revisions(conn)
    finally:
        await engine.dispose()


async def test_migrate_waits_while_another_process_holds_the_lock(pg: EmbeddedPostgres | ExternalPostgres) -> None:
    url = pg.create_database(f"test_{uuid.uuid4().hex[:12]}")
    holder = create_async_engine(url)
    try:
        async with holder.connect() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_lock(migrations.MIGRATION_LOCK_ID)))
            await conn.commit()
            running = asyncio.ensure_future(asyncio.to_thread(migrations.upgrade, PACKAGE, url))
            await asyncio.sleep(3 * migrations.LOCK_POLL_SECONDS)
            assert not running.done(), "migrated while another process held the migration lock"
            assert await _revisions(url) == set()
            await conn.execute(sa.select(sa.func.pg_advisory_unlock(migrations.MIGRATION_LOCK_ID)))
            await conn.commit()
            await asyncio.wait_for(running, 120)
    finally:
        await holder.dispose()
    heads, known = migrations.code_revisions(PACKAGE)
    assert migrations.schema_state(await _revisions(url), heads, known) == migrations.CURRENT


def test_pods_migrating_at_once_all_succeed(pg: EmbeddedPostgres | ExternalPostgres) -> None:
    """Three `advocacy-sharing migrate` processes started together, as a rollout's init containers."""
    url = pg.create_database(f"test_{uuid.uuid4().hex[:12]}")
    env = {**os.environ, "DEV_MODE": "true", "SHARING_DATABASE_URL": url}
    command = [sys.executable, "-m", PACKAGE, "migrate"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(3)]  # fmt: skip
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    check = subprocess.run([*command, "check"], env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "schema current" in check.stdout, check.stdout + check.stderr
