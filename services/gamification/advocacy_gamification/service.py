"""Gamification use cases: award points from events (ledger + totals), read leaderboards."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.events import Envelope
from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict
from advocacy_common.pagination import PageParams, encode_cursor
from advocacy_gamification import domain
from advocacy_gamification.db import LedgerEntry, Member, PointsTotal

LEDGER = LedgerEntry.__table__  # type: ignore[attr-defined]
TOTALS = PointsTotal.__table__  # type: ignore[attr-defined]
MEMBERS = Member.__table__  # type: ignore[attr-defined]


def _award(env: Envelope[Any], rules: domain.Rules) -> dict[str, Any] | None:
    data = env.data
    if isinstance(data, ShareCreated):
        action, points, at = "share", rules.share, data.created_at
    elif isinstance(data, ShareClicked) and data.verdict is Verdict.counted:
        action, points, at = "click", rules.click, data.clicked_at
    else:
        return None
    return {
        "tenant_id": env.tenant_id,
        "employee_id": data.employee_id,
        "event_id": env.id,
        "rule_version": rules.version,
        "action": action,
        "points": points,
        "occurred_at": at,
        "team": data.team,
    }


async def apply_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Append awards to the ledger (unique per event and rule) and move the window totals."""
    now = datetime.now(UTC)
    members: dict[tuple[str, str], dict[str, Any]] = {}
    awards: list[dict[str, Any]] = []
    for env in events:
        if isinstance(env.data, ShareCreated):
            d = env.data
            members[(env.tenant_id, d.employee_id)] = {
                "tenant_id": env.tenant_id,
                "employee_id": d.employee_id,
                "name": d.employee_name,
                "team": d.team,
                "updated_at": now,
            }
        award = _award(env, domain.DEFAULT_RULES)
        if award is not None:
            awards.append(award)
    if members:
        stmt = pg_insert(MEMBERS).values(list(members.values()))
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"],
                set_={
                    "name": stmt.excluded.name,
                    "team": stmt.excluded.team,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )
    if not awards:
        return
    teams = {(a["tenant_id"], a["employee_id"]): a.pop("team") for a in awards}
    res = await session.execute(
        pg_insert(LEDGER)
        .values(awards)
        .on_conflict_do_nothing(constraint="uq_ledger_event_rule")
        .returning(LEDGER.c.event_id, LEDGER.c.rule_version)
    )
    new = {(r[0], r[1]) for r in res.all()}
    totals: dict[tuple[str, str, date, str], int] = defaultdict(int)
    for a in awards:
        if (a["event_id"], a["rule_version"]) not in new:
            continue
        for window, start in domain.windows_for(a["occurred_at"]):
            totals[(a["tenant_id"], window, start, a["employee_id"])] += a["points"]
    if not totals:
        return
    rows = [
        {
            "tenant_id": t,
            "window": w,
            "window_start": s,
            "employee_id": e,
            "points": p,
            "team": teams.get((t, e)),
        }
        for (t, w, s, e), p in sorted(totals.items())
    ]
    stmt = pg_insert(TOTALS).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "window", "window_start", "employee_id"],
            set_={"points": TOTALS.c.points + stmt.excluded.points, "team": stmt.excluded.team},
        )
    )


def current_window(window: str, now: datetime | None = None) -> tuple[date, date | None]:
    today = (now or datetime.now(UTC)).date()
    start = domain.window_start(window, today)
    return start, domain.window_end(window, start)


async def leaderboard(
    session: AsyncSession, who: Principal, window: str, team: str | None, page: PageParams
) -> dict[str, Any]:
    start, end = current_window(window)
    scope = [TOTALS.c.tenant_id == who.tenant_id, TOTALS.c.window == window, TOTALS.c.window_start == start]
    if team:
        scope.append(TOTALS.c.team == team)
    stmt = (
        sa.select(TOTALS.c.employee_id, TOTALS.c.points, MEMBERS.c.name, MEMBERS.c.team, MEMBERS.c.visibility)
        .select_from(
            TOTALS.outerjoin(
                MEMBERS,
                sa.and_(MEMBERS.c.tenant_id == TOTALS.c.tenant_id, MEMBERS.c.employee_id == TOTALS.c.employee_id),
            )
        )
        .where(*scope)
    )
    if page.cursor:
        points, emp = int(page.cursor[0]), str(page.cursor[1])
        stmt = stmt.where(
            sa.or_(TOTALS.c.points < points, sa.and_(TOTALS.c.points == points, TOTALS.c.employee_id > emp))
        )
    stmt = stmt.order_by(TOTALS.c.points.desc(), TOTALS.c.employee_id).limit(page.limit + 1)
    rows = (await session.execute(stmt)).all()
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        next_cursor = encode_cursor([rows[-1].points, rows[-1].employee_id])
    items: list[dict[str, Any]] = []
    if rows:
        p0, e0 = rows[0].points, rows[0].employee_id
        counts = (
            await session.execute(
                sa.select(
                    sa.func.count().filter(TOTALS.c.points > p0),
                    sa.func.count().filter(sa.and_(TOTALS.c.points == p0, TOTALS.c.employee_id < e0)),
                ).where(*scope)
            )
        ).one()
        ranks = domain.competition_ranks([r.points for r in rows], first_rank=1 + counts[0], before_equal=counts[1])
        for r, rank in zip(rows, ranks, strict=True):
            items.append(
                {
                    "rank": rank,
                    "employee_id": r.employee_id,
                    "name": r.name,
                    "team": r.team,
                    "points": r.points,
                }
            )
    return {
        "window": window,
        "starts_at": datetime.combine(start, datetime.min.time(), UTC) if window != "all" else None,
        "ends_at": datetime.combine(end, datetime.min.time(), UTC) if end else None,
        "items": items,
        "next_cursor": next_cursor,
    }
