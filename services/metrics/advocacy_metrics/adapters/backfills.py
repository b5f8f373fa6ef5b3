"""``aggregate_backfills``: the aggregates a tenant has not filled yet.

An aggregate added after tenants had facts starts empty for them; its migration marks each such
tenant. While a tenant's marker is there, the reads of that aggregate take their old path (a scan
of the facts), and ``advocacy metrics backfill`` fills it and deletes the marker
(:mod:`advocacy_metrics.features.backfill`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_metrics.db import AGGREGATE_BACKFILLS


async def pending(session: AsyncSession, tenant: str, aggregate: str) -> bool:
    """Whether ``aggregate`` is still to be filled for ``tenant`` (one primary-key probe)."""
    a = AGGREGATE_BACKFILLS
    return bool(await session.scalar(sa.select(sa.exists().where(a.c.tenant_id == tenant, a.c.aggregate == aggregate))))


async def done(session: AsyncSession, tenant: str, aggregate: str) -> None:
    a = AGGREGATE_BACKFILLS
    await session.execute(sa.delete(a).where(a.c.tenant_id == tenant, a.c.aggregate == aggregate))


async def mark(session: AsyncSession, tenant: str, aggregate: str) -> None:
    """Mark ``aggregate`` as still to be filled for ``tenant`` (what a migration does, for tests)."""
    a = AGGREGATE_BACKFILLS
    await session.execute(
        sa.text(f"INSERT INTO {a.name} (tenant_id, aggregate) VALUES (:t, :a) ON CONFLICT DO NOTHING"),  # noqa: S608
        {"t": tenant, "a": aggregate},
    )
