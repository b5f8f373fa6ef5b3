"""Reading the boards: a window's board (optionally one team's), a challenge's board, the caller's
own place, and the team board. Every board lists only ranked people (enrolled, not hidden, not
deactivated in the company's directory); the anonymous are listed without id or name. Ranks are
competition ranks over the ranked people.

Pages are keyset pages on (points desc, employee id); the cursor holds the last page's points and
how many people with those points were already shown, never an employee id (an anonymous
person's id must not leak through a cursor). A window's board is indexed by the points' bucket (an
octave, ``domain.points_bucket``), not the points (docs/adr/0032-board-ranks-by-points-bucket.md):
its page reads the cursor's bucket and the ones below, each sorted by (points desc, employee id),
which is the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.errors import NotFound
from advocacy_common.pagination import PageParams, as_int, as_offset, encode_cursor, parse_cursor
from advocacy_gamification import domain
from advocacy_gamification.adapters.context import TenantContext, calendar
from advocacy_gamification.db import CHALLENGE_TOTALS, CHALLENGES, MEMBERS, SCORE_COUNTS, TEAM_SIZES, TOTALS


def display(employee_id: str, name: str | None, team: str | None, visibility: str | None) -> dict[str, Any]:
    if visibility == "anonymous":
        return {"employee_id": None, "name": domain.ANONYMOUS_NAME, "team": None}
    return {"employee_id": employee_id, "name": name, "team": team}


def _cursor(page: PageParams) -> tuple[int, int] | None:
    if not page.cursor:
        return None
    points, offset = parse_cursor(page.cursor, as_int, as_offset)
    return int(points), int(offset)


@dataclass(frozen=True)
class Scope:
    """The rows of one board: a table and its conditions. ``counts`` (conditions on
    ``score_counts``) is set when the board keeps a count per score: ranks then sum over the
    distinct scores instead of counting the people above. ``bucketed``: the table's rank indexes
    hold ``bucket`` (``points_totals``), so the rows are read in (bucket, points, employee) order
    and a bound on the points comes with the same bound on the bucket (the index's range)."""

    table: sa.Table
    where: tuple[Any, ...]
    counts: tuple[Any, ...] | None = None
    bucketed: bool = False

    def order(self) -> tuple[Any, ...]:
        """(points desc, employee id), with the bucket first when the index holds it (the same order:
        the bucket never decreases as the points grow)."""
        t = self.table
        by_points = (t.c.points.desc(), t.c.employee_id)
        return (t.c.bucket.desc(), *by_points) if self.bucketed else by_points

    def at_most(self, points: int) -> tuple[Any, ...]:
        """The rows with at most ``points``."""
        t = self.table
        if self.bucketed:
            return (t.c.bucket <= domain.points_bucket(points), t.c.points <= points)
        return (t.c.points <= points,)

    def members_join(self) -> Any:
        t = self.table
        return t.outerjoin(
            MEMBERS, sa.and_(MEMBERS.c.tenant_id == t.c.tenant_id, MEMBERS.c.employee_id == t.c.employee_id)
        )

    def above(self, points: Any) -> tuple[Any, Any]:
        """(how many ranked people have more than ``points``, the next score up) as scalar subqueries.
        ``points`` is a number or a scalar subquery."""
        if self.counts is not None:
            sc = SCORE_COUNTS
            n = sa.select(sa.func.coalesce(sa.func.sum(sc.c.count), 0)).where(*self.counts, sc.c.points > points)
            nxt = sa.select(sa.func.min(sc.c.points)).where(*self.counts, sc.c.points > points, sc.c.count > 0)
            return n.scalar_subquery(), nxt.scalar_subquery()
        t = self.table
        more: tuple[Any, ...] = (t.c.points > points,)
        if self.bucketed and isinstance(points, int):  # the index's range: its bucket and those above
            more = (t.c.bucket >= domain.points_bucket(points), *more)
        n = sa.select(sa.func.count()).select_from(t).where(*self.where, *more)
        nxt = sa.select(sa.func.min(t.c.points)).where(*self.where, *more)
        return n.scalar_subquery(), nxt.scalar_subquery()


async def ranked_page(session: AsyncSession, scope: Scope, page: PageParams) -> tuple[list[dict[str, Any]], str | None]:
    t = scope.table
    cur = _cursor(page)
    stmt = (
        sa.select(t.c.employee_id, t.c.points, t.c.team, MEMBERS.c.name, MEMBERS.c.visibility)
        .select_from(scope.members_join())
        .where(*scope.where)
        .order_by(*scope.order())
        .limit(page.limit + 1)
    )
    if cur is not None:
        stmt = stmt.where(*scope.at_most(cur[0])).offset(cur[1])
    rows = (await session.execute(stmt)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    if not rows:
        return [], None
    p0 = rows[0].points
    # not one snapshot (ReadSessionDep, autocommit): a live board; a batch between the page and the
    # count above it may shift a later page's ranks by what it moved, and the next update corrects it
    above = 0
    if cur is not None:  # on the first page nobody is above the first row
        above = int(await session.scalar(sa.select(scope.above(p0)[0])) or 0)
    before_equal = cur[1] if cur is not None and cur[0] == p0 else 0
    ranks = domain.competition_ranks([r.points for r in rows], first_rank=1 + above, before_equal=before_equal)
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
    key = (TOTALS.c.tenant_id == ctx.tenant_id, TOTALS.c.window == window, TOTALS.c.window_start == span.start)
    where: list[Any] = [*key, TOTALS.c.ranked]
    counts = None
    if team is not None:
        where.append(TOTALS.c.team == team)
    else:
        sc = SCORE_COUNTS
        counts = (sc.c.tenant_id == ctx.tenant_id, sc.c.window == window, sc.c.window_start == span.start)
    return Scope(TOTALS, tuple(where), counts, bucketed=True), span


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
    ctx = await calendar(session, tenant_id)
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
    """The caller's rank (null when unranked: opted out, or deactivated in the directory), points and
    the gap to the next place up: one query."""
    t = scope.table
    mine = sa.select(t.c.points).where(*key).scalar_subquery()
    above, nxt = scope.above(mine)
    enrolled = (
        sa.select(sa.and_(MEMBERS.c.enrolled, MEMBERS.c.active))
        .where(MEMBERS.c.tenant_id == tenant_id, MEMBERS.c.employee_id == employee_id)
        .scalar_subquery()
    )
    row = (await session.execute(sa.select(mine.label("points"), enrolled.label("enrolled"), above, nxt))).one()
    if row[0] is None:
        return {"rank": None, "points": 0, "gap_to_next": None}
    points = int(row[0])
    if row[1] is False:
        return {"rank": None, "points": points, "gap_to_next": None}
    return {
        "rank": 1 + int(row[2]),
        "points": points,
        "gap_to_next": (int(row[3]) - points) if row[3] is not None else None,
    }


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
    ctx = await calendar(session, tenant_id)
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
    """Teams ranked by points per member, and their points in the window (of ranked people). The
    divisor (``members``) is the directory's team size (team.updated: active provisioned members)
    when the directory knows the team, else the ranked people (enrolled, not hidden, active)
    gamification knows in the team, whether or not they scored. A directory team nobody has acted in
    yet is listed with 0 points; a deleted directory team falls back to the people known in it."""
    now = now or datetime.now(UTC)
    ctx = await calendar(session, tenant_id)
    span = ctx.current_window(window, now)
    pts = (
        sa.select(TOTALS.c.team, sa.func.sum(TOTALS.c.points).label("points"))
        .where(
            TOTALS.c.tenant_id == tenant_id,
            TOTALS.c.window == window,
            TOTALS.c.window_start == span.start,
            TOTALS.c.ranked,
            TOTALS.c.team.is_not(None),
        )
        .group_by(TOTALS.c.team)
        .subquery()
    )
    mem = (
        sa.select(MEMBERS.c.team, sa.func.count().label("members"))
        .where(
            MEMBERS.c.tenant_id == tenant_id,
            MEMBERS.c.enrolled,
            MEMBERS.c.visibility != "hidden",
            MEMBERS.c.active,
            MEMBERS.c.team.is_not(None),
        )
        .group_by(MEMBERS.c.team)
        .subquery()
    )
    sizes = (
        sa.select(TEAM_SIZES.c.team, TEAM_SIZES.c.size)
        .where(TEAM_SIZES.c.tenant_id == tenant_id, TEAM_SIZES.c.deleted.is_(False), TEAM_SIZES.c.size > 0)
        .subquery()
    )
    # every team someone ranked is known in, or the directory counts anyone in
    names = sa.union(sa.select(mem.c.team), sa.select(sizes.c.team)).subquery()
    rows = (
        await session.execute(
            sa.select(
                names.c.team,
                sa.func.coalesce(mem.c.members, 0).label("members"),
                sizes.c.size,
                sa.func.coalesce(pts.c.points, 0).label("points"),
            ).select_from(
                names.outerjoin(mem, mem.c.team == names.c.team)
                .outerjoin(sizes, sizes.c.team == names.c.team)
                .outerjoin(pts, pts.c.team == names.c.team)
            )
        )
    ).all()
    per = [(r.team, int(r.points), domain.per_capita_divisor(r.size, int(r.members))) for r in rows]
    scored = sorted(
        ((team, points, n, Fraction(points, n)) for team, points, n in per),
        key=lambda r: (-r[3], -r[1], r[0]),
    )
    ranks: list[int] = []
    for i, r in enumerate(scored):
        ranks.append(ranks[-1] if i and r[3] == scored[i - 1][3] else i + 1)
    offset = 0
    if page.cursor:
        (offset,) = parse_cursor(page.cursor, as_offset)
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


async def live_board(session: AsyncSession, key: tuple[str, str, str | None, int]) -> dict[str, Any]:
    """What a live board's feed shows for (tenant, window, team, size): the board's first page, with
    its team and without a cursor."""
    tenant, window, team, size = key
    page = await board(session, tenant, window, team, None, PageParams(limit=size, cursor=None))
    page.pop("next_cursor", None)
    page["team"] = team
    return page
