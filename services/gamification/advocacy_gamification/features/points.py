"""The caller's ledger, and an admin's reversal of an award."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit
from advocacy_common.db import one_snapshot
from advocacy_common.errors import Conflict, NotFound
from advocacy_common.pagination import PageParams, as_int, encode_cursor, parse_cursor
from advocacy_gamification.adapters.ledger import reverse, unreversed_awards
from advocacy_gamification.db import BALANCES, LEDGER, TOTALS
from advocacy_gamification.domain import ALL_TIME_START


def entry_out(r: Any) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "type": r.entry_type,
        "action": r.action,
        "detail": r.detail,
        "points": r.points,
        "balance_change": r.balance_delta,
        "event_id": r.event_id,
        "rule_version": r.rule_version,
        "ref": r.ref,
        "content_id": r.content_id,
        "capped": r.capped,
        "reverses_entry_id": str(r.reverses_id) if r.reverses_id is not None else None,
        "reason": r.reason,
        "occurred_at": r.occurred_at,
        "created_at": r.created_at,
    }


async def my_points(session: AsyncSession, tenant_id: str, employee_id: str, page: PageParams) -> dict[str, Any]:
    """The caller's balance, points and a page of entries, read from one snapshot: the figures are
    the sums of the entries, even while a consumer batch commits between the reads."""
    await one_snapshot(session)
    balance = await session.scalar(
        sa.select(BALANCES.c.balance).where(BALANCES.c.tenant_id == tenant_id, BALANCES.c.employee_id == employee_id)
    )
    earned = await session.scalar(
        sa.select(TOTALS.c.points).where(
            TOTALS.c.tenant_id == tenant_id,
            TOTALS.c.window == "all",
            TOTALS.c.window_start == ALL_TIME_START,  # the whole primary key: one probe
            TOTALS.c.employee_id == employee_id,
        )
    )
    stmt = (
        sa.select(LEDGER)
        .where(LEDGER.c.tenant_id == tenant_id, LEDGER.c.employee_id == employee_id)
        .order_by(LEDGER.c.id.desc())
        .limit(page.limit + 1)
    )
    if page.cursor:
        (before,) = parse_cursor(page.cursor, as_int)
        stmt = stmt.where(LEDGER.c.id < before)
    rows = (await session.execute(stmt)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {
        "employee_id": employee_id,
        "balance": int(balance or 0),
        "points": int(earned or 0),
        "items": [entry_out(r) for r in rows],
        "next_cursor": encode_cursor([rows[-1].id]) if more else None,
    }


async def admin_reverse(
    session: AsyncSession, tenant_id: str, employee_id: str, event_id: str, reason: str, *, by: str
) -> dict[str, Any]:
    """Reverse the employee's award(s) for ``event_id`` (the event id shown in their ledger, or the
    click / share / conversion id behind it). A reversal happens once: a second one is a 409."""
    match = sa.or_(LEDGER.c.event_id == event_id, LEDGER.c.ref == event_id)
    scope = (
        LEDGER.c.tenant_id == tenant_id,
        LEDGER.c.employee_id == employee_id,
        LEDGER.c.entry_type == "award",
        match,
    )
    found = await session.scalar(sa.select(sa.func.count()).select_from(LEDGER).where(*scope))
    if not found:
        raise NotFound("no award for that employee and event")
    awards = (await session.execute(unreversed_awards().where(*scope))).all()
    posted = await reverse(session, awards, reason=reason) if awards else []
    if not posted:
        raise Conflict("that award was already reversed", code="already_reversed")
    ids = [p.id for p in posted]
    rows = (await session.execute(sa.select(LEDGER).where(LEDGER.c.id.in_(ids)).order_by(LEDGER.c.id))).all()
    entries = [entry_out(r) for r in rows]
    after = {"event_id": event_id, "reason": reason, "points": sum(int(e["points"]) for e in entries)}
    await audit.record(session, tenant_id, by, "points.reversed", target=employee_id, after=after)
    return {"items": entries}
