"""``aggregate_backfills``: the aggregates a tenant has not filled yet.

An aggregate added after tenants had facts starts empty for them; its migration marks each such
tenant. While a tenant's marker is there, the reads of that aggregate take their old path (a scan
of the facts), and ``advocacy metrics backfill`` fills it and deletes the marker
(:mod:`advocacy_metrics.features.backfill`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_metrics.db import AGGREGATE_BACKFILLS


async def pending(session: AsyncSession, tenant: str, aggregate: str) -> bool:
    """Whether ``aggregate`` is still to be filled for ``tenant`` (one primary-key probe)."""
    a = AGGREGATE_BACKFILLS
    return bool(await session.scalar(sa.select(sa.exists().where(a.c.tenant_id == tenant, a.c.aggregate == aggregate))))


async def pending_of(session: AsyncSession, tenant: str, aggregates: Sequence[str]) -> frozenset[str]:
    """Which of ``aggregates`` are still to be filled for ``tenant`` (one statement: a primary-key
    probe each)."""
    a = AGGREGATE_BACKFILLS
    res = await session.execute(
        sa.select(a.c.aggregate).where(a.c.tenant_id == tenant, a.c.aggregate.in_(list(aggregates)))
    )
    return frozenset(res.scalars().all())


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


def mark_tenants_sql(aggregate: str, sources: Sequence[str]) -> str:
    """The statement a migration adding ``aggregate`` runs: a marker for every tenant with a row in
    one of the ``sources`` tables. Plain SQL (it works under ``alembic --sql``), with the table
    named as it was when 0013 and 0014 ran: they call this, so its text must not change."""
    union = " UNION ".join(f"SELECT tenant_id FROM {t}" for t in sources)  # noqa: S608 - the migrations' own names
    return (
        "INSERT INTO aggregate_backfills (tenant_id, aggregate) "  # noqa: S608 - likewise
        f"SELECT DISTINCT tenant_id, '{aggregate}' FROM ({union}) t "
        "ON CONFLICT DO NOTHING"
    )
