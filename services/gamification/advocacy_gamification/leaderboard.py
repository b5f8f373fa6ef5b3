"""Reading the boards: a window's board (optionally one team's), a challenge's board, the caller's
own place, and the team board. Every board lists only ranked people (enrolled, not hidden); the
anonymous are listed without id or name. Ranks are competition ranks over the ranked people.

Pages are keyset pages on (points desc, employee id); the cursor holds the last page's points and
how many people with those points were already shown, never an employee id (an anonymous
person's id must not leak through a cursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.errors import NotFound, Unprocessable
from advocacy_common.pagination import PageParams, encode_cursor
from advocacy_gamification import domain
from advocacy_gamification.context import TenantContext, load_context
from advocacy_gamification.db import CHALLENGE_TOTALS, CHALLENGES, MEMBERS, TOTALS


def display(employee_id: str, name: str | None, team: str | None, visibility: str | None) -> dict[str, Any]:
    if visibility == "anonymous":
        return {"employee_id": None, "name": domain.ANONYMOUS_NAME, "team": None}
    return {"employee_id": employee_id, "name": name, "team": team}


def _cursor(page: PageParams) -> tuple[int, int] | None:
    if not page.cursor:
        return None
    c = page.cursor
    if len(c) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in c) or c[1] < 0:
        raise Unprocessable.field("cursor", "invalid cursor")
    return int(c[0]), int(c[1])


@dataclass(frozen=True)
class Scope:
    """The rows of one board: a table, its conditions, and how to join members for display."""

    table: sa.Table
    where: tuple[Any, ...]

    def members_join(self) -> Any:
        t = self.table
        return t.outerjoin(
            MEMBERS, sa.and_(MEMBERS.c.tenant_id == t.c.tenant_id, MEMBERS.c.employee_id == t.c.employee_id)
        )


async def ranked_page(session: AsyncSession, scope: Scope, page: PageParams) -> tuple[list[dict[str, Any]], str | None]:
    t = scope.table
    cur = _cursor(page)
    stmt = (
        sa.select(t.c.employee_id, t.c.points, t.c.team, MEMBERS.c.name, MEMBERS.c.visibility)
        .select_from(scope.members_join())
        .where(*scope.where)
        .order_by(t.c.points.desc(), t.c.employee_id)
        .limit(page.limit + 1)
    )
    if cur is not None:
        stmt = stmt.where(t.c.points <= cur[0]).offset(cur[1])
    rows = (await session.execute(stmt)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    if not rows:
        return [], None
    p0 = rows[0].points
    above = await session.scalar(sa.select(sa.func.count()).select_from(t).where(*scope.where, t.c.points > p0))
    before_equal = cur[1] if cur is not None and cur[0] == p0 else 0
    ranks = domain.competition_ranks(
        [r.points for r in rows], first_rank=1 + int(above or 0), before_equal=before_equal
    )
    items = [
        {"rank": rank, **display(r.employee_id, r.name, r.team, r.visibility), "points": r.points}
        for r, rank in zip(rows, ranks, strict=True)
    ]
    next_cursor = None
    if more:
        last = rows[-1].points
        ties = sum(1 for r in rows if r.points == last)
        if cur is not None and cur[0] == last:
            ties += cur[1]
        next_cursor = encode_cursor([last, ties])
    return items, next_cursor


def window_scope(
    ctx: TenantContext, window: str, now: datetime, team: str | None = None
) -> tuple[Scope, domain.WindowSpan]:
    span = ctx.current_window(window, now)
    where: list[Any] = [
        TOTALS.c.tenant_id == ctx.tenant_id,
        TOTALS.c.window == window,
        TOTALS.c.window_start == span.start,
        TOTALS.c.ranked,
    ]
    if team is not None:
        where.append(TOTALS.c.team == team)
    return Scope(TOTALS, tuple(where)), span


async def challenge_row(session: AsyncSession, tenant_id: str, challenge_id: str) -> Any:
    row = (
        await session.execute(
            sa.select(CHALLENGES).where(CHALLENGES.c.id == challenge_id, CHALLENGES.c.tenant_id == tenant_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such challenge")
    return row


def challenge_scope(challenge_id: str, team: str | None = None) -> Scope:
    where: list[Any] = [CHALLENGE_TOTALS.c.challenge_id == challenge_id, CHALLENGE_TOTALS.c.ranked]
    if team is not None:
        where.append(CHALLENGE_TOTALS.c.team == team)
    return Scope(CHALLENGE_TOTALS, tuple(where))


async def board(
    session: AsyncSession,
    tenant_id: str,
    window: str,
    team: str | None,
    challenge: str | None,
    page: PageParams,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    if challenge is not None:
        c = await challenge_row(session, tenant_id, challenge)
        items, next_cursor = await ranked_page(session, challenge_scope(c.id, team), page)
        return {
            "window": window,
            "challenge": c.id,
            "starts_at": c.starts_at,
            "ends_at": c.ends_at,
            "items": items,
            "next_cursor": next_cursor,
        }
    ctx = await load_context(session, tenant_id)
    scope, span = window_scope(ctx, window, now, team)
    items, next_cursor = await ranked_page(session, scope, page)
    return {
        "window": window,
        "starts_at": span.starts_at,
        "ends_at": span.ends_at,
        "items": items,
        "next_cursor": next_cursor,
    }


async def place(session: AsyncSession, scope: Scope, key: Any, employee_id: str, tenant_id: str) -> dict[str, Any]:
    """The caller's rank (null when unranked), points and the gap to the next place up."""
    t = scope.table
    mine = (
        await session.execute(
            sa.select(
                sa.select(t.c.points).where(*key).scalar_subquery().label("points"),
                sa.select(MEMBERS.c.enrolled)
                .where(MEMBERS.c.tenant_id == tenant_id, MEMBERS.c.employee_id == employee_id)
                .scalar_subquery()
                .label("enrolled"),
            )
        )
    ).one()
    if mine.points is None:
        return {"rank": None, "points": 0, "gap_to_next": None}
    points = int(mine.points)
    if mine.enrolled is False:
        return {"rank": None, "points": points, "gap_to_next": None}
    above, nxt = (
        await session.execute(
            sa.select(sa.func.count(), sa.func.min(t.c.points)).select_from(t).where(*scope.where, t.c.points > points)
        )
    ).one()
    return {"rank": 1 + int(above), "points": points, "gap_to_next": (int(nxt) - points) if nxt is not None else None}


async def me(
    session: AsyncSession,
    tenant_id: str,
    employee_id: str,
    window: str,
    challenge: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    if challenge is not None:
        c = await challenge_row(session, tenant_id, challenge)
        ct = CHALLENGE_TOTALS
        key: tuple[Any, ...] = (ct.c.challenge_id == c.id, ct.c.employee_id == employee_id)
        out = await place(session, challenge_scope(c.id), key, employee_id, tenant_id)
        return {"window": window, "challenge": c.id, **out}
    ctx = await load_context(session, tenant_id)
    scope, span = window_scope(ctx, window, now)
    key = (
        TOTALS.c.tenant_id == tenant_id,
        TOTALS.c.window == window,
        TOTALS.c.window_start == span.start,
        TOTALS.c.employee_id == employee_id,
    )
    out = await place(session, scope, key, employee_id, tenant_id)
    return {"window": window, **out}


async def teams(
    session: AsyncSession, tenant_id: str, window: str, page: PageParams, *, now: datetime | None = None
) -> dict[str, Any]:
    """Teams ranked by points per active member (enrolled members gamification knows of)."""
    now = now or datetime.now(UTC)
    ctx = await load_context(session, tenant_id)
    span = ctx.current_window(window, now)
    pts = (
        sa.select(TOTALS.c.team, sa.func.sum(TOTALS.c.points).label("points"))
        .select_from(
            TOTALS.outerjoin(
                MEMBERS,
                sa.and_(MEMBERS.c.tenant_id == TOTALS.c.tenant_id, MEMBERS.c.employee_id == TOTALS.c.employee_id),
            )
        )
        .where(
            TOTALS.c.tenant_id == tenant_id,
            TOTALS.c.window == window,
            TOTALS.c.window_start == span.start,
            TOTALS.c.team.is_not(None),
            sa.func.coalesce(MEMBERS.c.enrolled, sa.true()),
        )
        .group_by(TOTALS.c.team)
        .subquery()
    )
    mem = (
        sa.select(MEMBERS.c.team, sa.func.count().label("members"))
        .where(MEMBERS.c.tenant_id == tenant_id, MEMBERS.c.enrolled, MEMBERS.c.team.is_not(None))
        .group_by(MEMBERS.c.team)
        .subquery()
    )
    rows = (
        await session.execute(
            sa.select(mem.c.team, mem.c.members, sa.func.coalesce(pts.c.points, 0).label("points")).select_from(
                mem.outerjoin(pts, pts.c.team == mem.c.team)
            )
        )
    ).all()
    scored = sorted(
        ((r.team, int(r.points), int(r.members), Fraction(int(r.points), int(r.members))) for r in rows),
        key=lambda r: (-r[3], -r[1], r[0]),
    )
    ranks: list[int] = []
    for i, r in enumerate(scored):
        ranks.append(ranks[-1] if i and r[3] == scored[i - 1][3] else i + 1)
    offset = 0
    if page.cursor:
        c = page.cursor
        if len(c) != 1 or not isinstance(c[0], int) or isinstance(c[0], bool) or c[0] < 0:
            raise Unprocessable.field("cursor", "invalid cursor")
        offset = c[0]
    chunk = list(zip(scored, ranks, strict=True))[offset : offset + page.limit]
    items = [
        {"rank": rank, "team": team, "points": points, "members": members, "points_per_member": round(float(ppm), 2)}
        for (team, points, members, ppm), rank in chunk
    ]
    more = offset + page.limit < len(scored)
    return {
        "window": window,
        "starts_at": span.starts_at,
        "ends_at": span.ends_at,
        "items": items,
        "next_cursor": encode_cursor([offset + page.limit]) if more else None,
    }
