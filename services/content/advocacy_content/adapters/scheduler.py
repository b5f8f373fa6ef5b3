"""The scheduler: publishes scheduled content and expires content, to the second, exactly once.

Each pass is one transaction per step: the due rows are claimed with ``FOR UPDATE SKIP LOCKED``,
their status changes and their events go to the outbox in that same transaction. A replica that
runs the same pass at the same moment skips the rows another holds, and once that transaction
commits the rows are no longer due (PostgreSQL re-checks the ``WHERE`` on the newest row version),
so however many replicas run, each item is published once and expired once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from advocacy_common.db import table_of
from advocacy_common.events import new_event
from advocacy_common.events.content import ContentExpired
from advocacy_common.outbox import add_events
from advocacy_content import domain
from advocacy_content.adapters.events import now, published_event
from advocacy_content.db import ContentItem
from advocacy_content.settings import SOURCE

if TYPE_CHECKING:
    from advocacy_common.runtime import Runtime

log = logging.getLogger("advocacy.content.scheduler")

BATCH = 500


_ITEMS = table_of(ContentItem)


async def _claim_and_set(session: AsyncSession, due: sa.Select[Any], values: dict[str, Any]) -> list[ContentItem]:
    """``UPDATE ... WHERE id IN (due rows, locked, skipping those another replica holds) RETURNING``."""
    claimed = due.with_for_update(skip_locked=True).scalar_subquery()
    stmt = sa.update(_ITEMS).where(_ITEMS.c.id.in_(claimed)).values(**values).returning(*_ITEMS.c)
    rows = (await session.execute(stmt)).mappings().all()
    return [ContentItem.model_validate(dict(r)) for r in rows]


async def publish_due(session: AsyncSession, at: datetime | None = None) -> list[ContentItem]:
    """Publish every scheduled item whose time has come (and whose expiry has not)."""
    at = at or now()
    due = (
        sa.select(_ITEMS.c.id)
        .where(
            _ITEMS.c.status == domain.Status.scheduled,
            _ITEMS.c.publish_at <= at,
            sa.or_(_ITEMS.c.expires_at.is_(None), _ITEMS.c.expires_at > at),
        )
        .order_by(_ITEMS.c.publish_at)
        .limit(BATCH)
    )
    items = await _claim_and_set(
        session, due, {"status": domain.Status.published, "published_at": at, "updated_at": at}
    )
    await add_events(session, [new_event(SOURCE, i.tenant_id, published_event(i), at=at) for i in items])
    return items


async def expire_due(session: AsyncSession, at: datetime | None = None) -> list[ContentItem]:
    """Expire every published item past its expiry (and every scheduled one that expired before
    its publication came round: it was never visible, so only the expiry is announced)."""
    at = at or now()
    due = (
        sa.select(_ITEMS.c.id)
        .where(
            _ITEMS.c.status.in_([domain.Status.published, domain.Status.scheduled]),
            _ITEMS.c.expires_at.is_not(None),
            _ITEMS.c.expires_at <= at,
        )
        .order_by(_ITEMS.c.expires_at)
        .limit(BATCH)
    )
    items = await _claim_and_set(session, due, {"status": domain.Status.expired, "expired_at": at, "updated_at": at})
    await add_events(
        session, [new_event(SOURCE, i.tenant_id, ContentExpired(content_id=i.id, expired_at=at), at=at) for i in items]
    )
    return items


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest moment something will be due (publication or expiry)."""
    publish = sa.select(sa.func.min(col(ContentItem.publish_at))).where(
        col(ContentItem.status) == domain.Status.scheduled
    )
    expire = sa.select(sa.func.min(col(ContentItem.expires_at))).where(
        col(ContentItem.status).in_([domain.Status.published, domain.Status.scheduled])
    )
    times = [await session.scalar(publish), await session.scalar(expire)]
    due = [t for t in times if t is not None]
    return min(due) if due else None


async def run_once(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """One pass: publish what is due, then expire what is due. Returns how many items changed."""
    changed = 0
    for step in (publish_due, expire_due):
        while True:
            async with sessionmaker() as session, session.begin():
                done = await step(session)
            changed += len(done)
            if len(done) < BATCH:
                break
    return changed


async def run_scheduler(
    sessionmaker: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    *,
    poll_seconds: float = 0.5,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Loop until ``stop``: a pass, then sleep until the next due moment (at most ``poll_seconds``,
    so items created by other processes are seen quickly)."""
    backoff = 0.5
    while not stop.is_set():
        try:
            changed = await run_once(sessionmaker)
            if changed and on_change is not None:
                on_change()
            async with sessionmaker() as session:
                due = await next_due(session)
            backoff = 0.5
            wait = poll_seconds
            if due is not None:
                wait = max(0.0, min(poll_seconds, (due - now()).total_seconds()))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning(
                "scheduler pass failed, retrying", extra={"error": f"{type(e).__name__}: {e}", "retry_in_s": backoff}
            )
            wait, backoff = backoff, min(backoff * 2, 5.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)


async def scheduler_task(runtime: Runtime, stop: asyncio.Event) -> None:
    """The worker task: runs in every worker replica; the claims above keep it exactly once."""
    poll = float(getattr(runtime.settings, "scheduler_poll_seconds", 0.5))
    await run_scheduler(runtime.sessionmaker, stop, poll_seconds=poll, on_change=runtime.kick_outbox)
