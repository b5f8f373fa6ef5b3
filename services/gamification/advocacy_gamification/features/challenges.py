"""Challenges: a period, a goal (an individual threshold, the top N, or a team's collective total)
and optionally chosen content. Progress is live: ``challenge_totals`` moves with the ledger (see
``ledger.post``). Winners are fixed once, after the end: a worker takes due challenges ``FOR
UPDATE SKIP LOCKED``, computes the winners and marks the challenge finalised in one transaction,
so with several workers each challenge is finalised by exactly one of them.

Published, in the same transactions: ``challenge.created`` when it is set up, and at finalisation one
``challenge.won`` per winner then ``challenge.finalised`` (notifications tells people: started,
ended, won)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.db import one_snapshot
from advocacy_common.errors import Unprocessable
from advocacy_common.events import new_event
from advocacy_common.events.gamification import ChallengeCreated, ChallengeFinalised, ChallengeWon
from advocacy_common.outbox import add_event, add_events
from advocacy_common.pagination import PageParams, as_str, as_time, encode_cursor, parse_cursor
from advocacy_gamification import domain
from advocacy_gamification.adapters.ledger import notify_boards, tenant_lock_key
from advocacy_gamification.adapters.sql import ranked_member
from advocacy_gamification.db import CHALLENGE_TOTALS, CHALLENGE_WINNERS, CHALLENGES, LEDGER, MEMBERS
from advocacy_gamification.features.leaderboard import challenge_row, challenge_scope, display, place, ranked_page
from advocacy_gamification.settings import SOURCE

log = logging.getLogger("advocacy.gamification.challenges")

PROGRESS_SIZE = 10


def status_of(c: Any, now: datetime) -> str:
    if now < c.starts_at:
        return "upcoming"
    if now < c.ends_at:
        return "active"
    return "ended"


def challenge_out(c: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "starts_at": c.starts_at,
        "ends_at": c.ends_at,
        "goal": {"kind": c.goal_kind, "value": c.goal_value},
        "content_ids": c.content_ids,
        "status": status_of(c, now),
        "finalised_at": c.finalised_at,
        "created_at": c.created_at,
    }


async def create(
    session: AsyncSession,
    tenant_id: str,
    by: str,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    goal_kind: str,
    goal_value: int,
    content_ids: list[str] | None,
) -> dict[str, Any]:
    """Create the challenge and back-fill its totals from the ledger (a challenge may start in the
    past). The tenant's challenge lock (exclusive here, shared while posting) makes the back-fill
    and the live increments meet exactly: nothing counted twice, nothing missed."""
    if ends_at <= starts_at:
        raise Unprocessable.field("ends_at", "must be after starts_at")
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(tenant_lock_key(tenant_id))))
    cid = str(uuid.uuid4())
    row = (
        await session.execute(
            sa.insert(CHALLENGES)
            .values(
                id=cid,
                tenant_id=tenant_id,
                name=name,
                starts_at=starts_at,
                ends_at=ends_at,
                goal_kind=goal_kind,
                goal_value=goal_value,
                content_ids=content_ids,
                created_by=by,
                created_at=datetime.now(UTC),
            )
            .returning(CHALLENGES)
        )
    ).one()
    where = [
        LEDGER.c.tenant_id == tenant_id,
        LEDGER.c.occurred_at >= starts_at,
        LEDGER.c.occurred_at < ends_at,
        LEDGER.c.points != 0,
    ]
    if content_ids:
        where.append(LEDGER.c.content_id.in_(content_ids))
    sums = (
        sa.select(LEDGER.c.employee_id, sa.func.sum(LEDGER.c.points).label("points"))
        .where(*where)
        .group_by(LEDGER.c.employee_id)
        .subquery()
    )
    member = sa.and_(MEMBERS.c.tenant_id == tenant_id, MEMBERS.c.employee_id == sums.c.employee_id)
    ranked = ranked_member()
    await session.execute(
        sa.insert(CHALLENGE_TOTALS).from_select(
            ["challenge_id", "employee_id", "tenant_id", "team", "points", "ranked"],
            sa.select(
                sa.literal(cid), sums.c.employee_id, sa.literal(tenant_id), MEMBERS.c.team, sums.c.points, ranked
            ).select_from(sums.outerjoin(MEMBERS, member)),
        )
    )
    created = ChallengeCreated(
        challenge_id=cid,
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        goal_kind=goal_kind,
        goal_value=goal_value,
        content_ids=content_ids,
        created_at=row.created_at,
    )
    await add_event(session, new_event(SOURCE, tenant_id, created, at=row.created_at))
    return challenge_out(row, datetime.now(UTC))


async def listing(session: AsyncSession, tenant_id: str, page: PageParams) -> dict[str, Any]:
    stmt = sa.select(CHALLENGES).where(CHALLENGES.c.tenant_id == tenant_id)
    if page.cursor:
        key = parse_cursor(page.cursor, as_time, as_str)
        stmt = stmt.where(
            sa.or_(CHALLENGES.c.starts_at < key[0], sa.and_(CHALLENGES.c.starts_at == key[0], CHALLENGES.c.id > key[1]))
        )
    rows = (
        await session.execute(stmt.order_by(CHALLENGES.c.starts_at.desc(), CHALLENGES.c.id).limit(page.limit + 1))
    ).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    now = datetime.now(UTC)
    return {
        "items": [challenge_out(r, now) for r in rows],
        "next_cursor": encode_cursor([rows[-1].starts_at.isoformat(), rows[-1].id]) if more else None,
    }


async def team_totals(session: AsyncSession, challenge_id: str) -> list[tuple[str, int, int]]:
    """(team, points, participants) of enrolled, active people (hidden ones count for their team)."""
    ct = CHALLENGE_TOTALS
    rows = await session.execute(
        sa.select(ct.c.team, sa.func.sum(ct.c.points), sa.func.count())
        .select_from(
            ct.outerjoin(
                MEMBERS, sa.and_(MEMBERS.c.tenant_id == ct.c.tenant_id, MEMBERS.c.employee_id == ct.c.employee_id)
            )
        )
        .where(
            ct.c.challenge_id == challenge_id,
            ct.c.team.is_not(None),
            sa.func.coalesce(sa.and_(MEMBERS.c.enrolled, MEMBERS.c.active), sa.true()),
        )
        .group_by(ct.c.team)
    )
    return [(r[0], int(r[1]), int(r[2])) for r in rows.all()]


async def detail(session: AsyncSession, tenant_id: str, challenge_id: str, viewer: str) -> dict[str, Any]:
    """A challenge with its progress (participants, the top, the team totals) and the viewer's place,
    from one snapshot: the count, the top and the viewer's rank agree even while a batch commits."""
    await one_snapshot(session)
    c = await challenge_row(session, tenant_id, challenge_id)
    now = datetime.now(UTC)
    out = challenge_out(c, now)
    scope = challenge_scope(c.id)
    participants = await session.scalar(sa.select(sa.func.count()).select_from(CHALLENGE_TOTALS).where(*scope.where))
    top, _ = await ranked_page(session, scope, PageParams(limit=PROGRESS_SIZE, cursor=None))
    progress: dict[str, Any] = {"participants": int(participants or 0), "top": top, "teams": None}
    if c.goal_kind == "threshold":
        for item in top:
            item["reached"] = item["points"] >= c.goal_value
    if c.goal_kind == "team_total":
        teams = domain.ranked_rows([(t, p) for t, p, _ in await team_totals(session, c.id)])
        progress["teams"] = [
            {"rank": r, "team": t, "points": p, "reached": p >= c.goal_value} for t, p, r in teams[:PROGRESS_SIZE]
        ]
    key = (CHALLENGE_TOTALS.c.challenge_id == c.id, CHALLENGE_TOTALS.c.employee_id == viewer)
    me = await place(session, scope, key, viewer, tenant_id)
    out["progress"] = progress
    out["me"] = me
    out["winners"] = await winners(session, c) if c.finalised_at is not None else None
    return out


async def winners(session: AsyncSession, c: Any) -> list[dict[str, Any]]:
    w = CHALLENGE_WINNERS
    rows = await session.execute(
        sa.select(w.c.rank, w.c.employee_id, w.c.team, w.c.points, MEMBERS.c.name, MEMBERS.c.visibility)
        .select_from(
            w.outerjoin(
                MEMBERS, sa.and_(MEMBERS.c.tenant_id == w.c.tenant_id, MEMBERS.c.employee_id == w.c.employee_id)
            )
        )
        .where(w.c.challenge_id == c.id)
        .order_by(w.c.position)
    )
    out = []
    for r in rows.all():
        if r.employee_id is None:  # a team
            out.append({"rank": r.rank, "employee_id": None, "name": None, "team": r.team, "points": r.points})
        else:
            out.append({"rank": r.rank, **display(r.employee_id, r.name, r.team, r.visibility), "points": r.points})
    return out


async def finalise(session: AsyncSession, c: Any, now: datetime) -> int:
    """Fix the winners of ``c`` (row locked by the caller). Returns how many."""
    if c.goal_kind == "team_total":
        rows = [(t, p) for t, p, _ in await team_totals(session, c.id)]
    else:
        ct = CHALLENGE_TOTALS
        rows = [
            (e, int(p))
            for e, p in (
                await session.execute(
                    sa.select(ct.c.employee_id, ct.c.points).where(ct.c.challenge_id == c.id, ct.c.ranked)
                )
            ).all()
        ]
    won = domain.challenge_winners(c.goal_kind, c.goal_value, rows)
    if won:
        team_of: dict[str, str | None] = {}
        if c.goal_kind != "team_total":
            ct = CHALLENGE_TOTALS
            team_of = dict(
                (await session.execute(sa.select(ct.c.employee_id, ct.c.team).where(ct.c.challenge_id == c.id))).all()
            )
        await session.execute(
            sa.insert(CHALLENGE_WINNERS),
            [
                {
                    "challenge_id": c.id,
                    "position": i,
                    "tenant_id": c.tenant_id,
                    "employee_id": None if c.goal_kind == "team_total" else who,
                    "team": who if c.goal_kind == "team_total" else team_of.get(who),
                    "points": points,
                    "rank": rank,
                }
                for i, (who, points, rank) in enumerate(won)
            ],
        )
    await session.execute(sa.update(CHALLENGES).where(CHALLENGES.c.id == c.id).values(finalised_at=now))
    team = c.goal_kind == "team_total"
    events = [
        ChallengeWon(
            challenge_id=c.id,
            name=c.name,
            employee_id=None if team else who,
            team=who if team else None,
            rank=rank,
            points=points,
            finalised_at=now,
        )
        for who, points, rank in won
    ]
    end = ChallengeFinalised(
        challenge_id=c.id, name=c.name, ends_at=c.ends_at, goal_kind=c.goal_kind, winners=len(won), finalised_at=now
    )
    await add_events(session, [new_event(SOURCE, c.tenant_id, d, at=now) for d in [*events, end]])
    await notify_boards(session, [c.tenant_id])
    return len(won)


async def finalise_due(
    session: AsyncSession, grace: timedelta = timedelta(0), now: datetime | None = None, batch: int = 20
) -> int:
    """Finalise challenges that ended at least ``grace`` ago; safe to run on every worker at once."""
    now = now or datetime.now(UTC)
    due = (
        await session.execute(
            sa.select(CHALLENGES)
            .where(CHALLENGES.c.finalised_at.is_(None), CHALLENGES.c.ends_at <= now - grace)
            .order_by(CHALLENGES.c.ends_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for c in due:
        n = await finalise(session, c, now)
        log.info("challenge finalised", extra={"challenge_id": c.id, "tenant_id": c.tenant_id, "winners": n})
    return len(due)
