"""Filling aggregates that were added after tenants had facts (``advocacy metrics backfill``).

Each entry of :data:`BACKFILLS` recomputes one aggregate of one tenant from the facts; the run
holds the tenant still (its exclusive lock: the consumer waits) and deletes the tenant's marker in
``aggregate_backfills`` in the same transaction, so the reads switch to the aggregate exactly when
it is complete. Run it after the new code has replaced every old consumer; ``--all`` recomputes
every tenant, so a tenant an old consumer created meanwhile is covered too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_metrics.adapters import adoption_steps, backfills, ranking
from advocacy_metrics.adapters.locks import lock_tenant_exclusive
from advocacy_metrics.db import AGGREGATE_BACKFILLS, DIRECTORY_FACTS, MEMBER_FACTS, SHARE_FACTS

#: Recompute one tenant's rows of an aggregate from the facts.
Fill = Callable[[AsyncSession, str], Awaitable[None]]

#: Every aggregate that can be backfilled, by its name in ``aggregate_backfills``.
BACKFILLS: dict[str, Fill] = {
    adoption_steps.AGGREGATE: adoption_steps.recompute_tenant,
    ranking.AGGREGATE: ranking.recompute_tenant,
    ranking.YEARLY_AGGREGATE: ranking.recompute_tenant_yearly,
}


async def tenants(session: AsyncSession) -> list[str]:
    """Every tenant with facts, or with a marker."""
    union = sa.union(
        *(sa.select(t.c.tenant_id) for t in (SHARE_FACTS, MEMBER_FACTS, DIRECTORY_FACTS, AGGREGATE_BACKFILLS))
    )
    return sorted((await session.scalars(sa.select(union.subquery().c.tenant_id))).all())


async def backfill_tenant(session: AsyncSession, tenant: str, aggregates: Sequence[str] = ()) -> list[str]:
    """Fill ``aggregates`` (default: every one) of ``tenant`` and clear its markers; in the caller's
    transaction. Returns the names filled."""
    names = list(aggregates) or list(BACKFILLS)
    unknown = [n for n in names if n not in BACKFILLS]
    if unknown:
        raise ValueError(f"unknown aggregate(s): {', '.join(unknown)}; known: {', '.join(BACKFILLS)}")
    await lock_tenant_exclusive(session, tenant)
    for name in names:
        await BACKFILLS[name](session, tenant)
        await backfills.done(session, tenant, name)
    return names
