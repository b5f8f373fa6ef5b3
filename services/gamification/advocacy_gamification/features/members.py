"""People: membership (enrolment, leaderboard visibility, name, team), the company directory's
record (active flag, team, name; team sizes) and erasure.

Deactivation (member.provisioned with ``active: false``, issue 17) takes the person off every board
at once: their totals rows stop being ranked (the boards, the live streams and everyone's ranks
follow, as for an opt-out) and :mod:`advocacy_gamification.features.awards` scores what they do
meanwhile at 0 points. A newer record with ``active: true`` brings them back."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit, erasure
from advocacy_common.bulk import insert_rows, rows_param
from advocacy_common.events import Envelope
from advocacy_common.events.content import MemberProvisioned, MemberUpdated, TeamUpdated
from advocacy_gamification import domain
from advocacy_gamification.adapters import pseudonyms
from advocacy_gamification.adapters.ledger import move_score_counts, notify_boards, notify_erased
from advocacy_gamification.adapters.sql import people_in, person_totals
from advocacy_gamification.db import (
    BADGES,
    BALANCES,
    CHALLENGE_TOTALS,
    CHALLENGE_WINNERS,
    CHALLENGES,
    DAILY_COUNTS,
    LEDGER,
    MEMBERS,
    REDEMPTIONS,
    REWARDS,
    RULE_SETS,
    STATS,
    TEAM_SIZES,
    TOTALS,
)

Key = tuple[str, str]

_NOTE_COLUMNS = ("tenant_id", "employee_id", "name", "team", "visibility", "enrolled", "updated_at")
_NOTE = insert_rows(MEMBERS, _NOTE_COLUMNS, "ON CONFLICT DO NOTHING")
_NOTE_AND_UPDATE = insert_rows(
    MEMBERS,
    _NOTE_COLUMNS,
    "ON CONFLICT (tenant_id, employee_id) DO UPDATE SET name = coalesce(excluded.name, t.name), "
    "team = coalesce(excluded.team, t.team), updated_at = excluded.updated_at",
)


async def erased(session: AsyncSession, keys: Iterable[Key]) -> set[Key]:
    """The keys among ``keys`` that belong to erased people (events about them are ignored): a
    tombstone in either form (keyed, or unkeyed from before revision 0007; see adapters.pseudonyms)."""
    return await pseudonyms.TOMBSTONES.erased(session, keys)


async def note_people(
    session: AsyncSession, people: dict[Key, tuple[str | None, str | None]], *, overwrite: bool
) -> None:
    """Remember people seen in activity events: (name, team). ``overwrite`` updates known ones
    (a share carries the sharer's current name and team); otherwise only unknown people are added."""
    if not people:
        return
    now = datetime.now(UTC)
    rows = [(t, e, name, team, "ranked", True, now) for (t, e), (name, team) in sorted(people.items())]
    await session.execute(_NOTE_AND_UPDATE if overwrite else _NOTE, rows_param(rows))


async def apply_membership(session: AsyncSession, envs: Sequence[Envelope[MemberUpdated]]) -> None:
    """Enrolment and visibility from content's membership events; an older event never overwrites
    a newer one. The copies on the boards (ranked, team) follow."""
    latest: dict[Key, Envelope[MemberUpdated]] = {}
    for env in envs:
        k = (env.tenant_id, env.data.employee_id)
        if k not in latest or latest[k].data.updated_at <= env.data.updated_at:
            latest[k] = env
    gone = await erased(session, latest)
    now = datetime.now(UTC)
    changed: list[Key] = []
    for k, env in sorted(latest.items()):
        if k in gone:
            continue
        d = env.data
        visibility = d.leaderboard if d.leaderboard in domain.VISIBILITIES else "ranked"
        stmt = pg_insert(MEMBERS).values(
            tenant_id=k[0],
            employee_id=k[1],
            name=d.name,
            team=d.team,
            visibility=visibility,
            enrolled=d.enrolled,
            membership_at=d.updated_at,
            updated_at=now,
        )
        res = await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"],
                set_={
                    "name": sa.func.coalesce(stmt.excluded.name, MEMBERS.c.name),
                    "team": sa.func.coalesce(stmt.excluded.team, MEMBERS.c.team),
                    "visibility": stmt.excluded.visibility,
                    "enrolled": stmt.excluded.enrolled,
                    "membership_at": stmt.excluded.membership_at,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=sa.or_(MEMBERS.c.membership_at.is_(None), MEMBERS.c.membership_at <= stmt.excluded.membership_at),
            ).returning(MEMBERS.c.employee_id)
        )
        if res.first() is not None:
            changed.append(k)
    await sync_board_copies(session, changed)


def _latest(envs: Sequence[Envelope[Any]]) -> dict[Key, Envelope[Any]]:
    latest: dict[Key, Envelope[Any]] = {}
    for env in envs:
        k = (env.tenant_id, env.data.employee_id)
        if k not in latest or latest[k].data.updated_at <= env.data.updated_at:
            latest[k] = env
    return latest


async def apply_directory(session: AsyncSession, envs: Sequence[Envelope[MemberProvisioned]]) -> None:
    """The directory's record of each person: active flag, team and display name (the directory's
    team and name win over what activity events carried). An older record never overwrites a newer
    one; an erased person's record is dropped. The copies on the boards follow."""
    latest = _latest(envs)
    gone = await erased(session, latest)
    now = datetime.now(UTC)
    changed: list[Key] = []
    for k, env in sorted(latest.items()):
        if k in gone:
            continue
        d: MemberProvisioned = env.data
        stmt = pg_insert(MEMBERS).values(
            tenant_id=k[0],
            employee_id=k[1],
            name=d.display_name,
            team=d.team,
            visibility="ranked",
            enrolled=True,
            active=d.active,
            directory_at=d.updated_at,
            updated_at=now,
        )
        res = await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"],
                set_={
                    "name": sa.func.coalesce(stmt.excluded.name, MEMBERS.c.name),
                    "team": sa.func.coalesce(stmt.excluded.team, MEMBERS.c.team),
                    "active": stmt.excluded.active,
                    "directory_at": stmt.excluded.directory_at,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=sa.or_(MEMBERS.c.directory_at.is_(None), MEMBERS.c.directory_at <= stmt.excluded.directory_at),
            ).returning(MEMBERS.c.employee_id)
        )
        if res.first() is not None:
            changed.append(k)
    await sync_board_copies(session, changed)


async def apply_team_sizes(session: AsyncSession, envs: Sequence[Envelope[TeamUpdated]]) -> None:
    """The directory's team sizes (the per-capita board's divisors); an older update never
    overwrites a newer one, and a deleted team keeps its row marked ``deleted``."""
    for env in envs:
        d = env.data
        stmt = pg_insert(TEAM_SIZES).values(
            tenant_id=env.tenant_id, team=d.team, size=max(d.size, 0), deleted=d.deleted, updated_at=d.updated_at
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "team"],
                set_={k: stmt.excluded[k] for k in ("size", "deleted", "updated_at")},
                where=TEAM_SIZES.c.updated_at <= stmt.excluded.updated_at,
            )
        )


async def inactive_among(session: AsyncSession, keys: Iterable[Key]) -> set[Key]:
    """The people among ``keys`` the directory has deactivated (through ``ix_members_inactive``: the
    tenant's few deactivated people, not an index probe per key)."""
    ks = sorted(set(keys))
    if not ks:
        return set()
    rows = await session.execute(
        sa.select(MEMBERS.c.tenant_id, MEMBERS.c.employee_id).where(
            people_in(MEMBERS.c.tenant_id, MEMBERS.c.employee_id, ks), sa.not_(MEMBERS.c.active)
        )
    )
    return {(r.tenant_id, r.employee_id) for r in rows.all()}


async def sync_board_copies(session: AsyncSession, keys: Sequence[Key]) -> None:
    """Copy each member's team and ranked flag onto their totals rows."""
    if not keys:
        return
    ks = sorted(set(keys))
    rows = (
        await session.execute(
            sa.select(
                MEMBERS.c.tenant_id,
                MEMBERS.c.employee_id,
                MEMBERS.c.team,
                MEMBERS.c.enrolled,
                MEMBERS.c.visibility,
                MEMBERS.c.active,
            ).where(people_in(MEMBERS.c.tenant_id, MEMBERS.c.employee_id, ks))
        )
    ).all()
    counts: dict[tuple[str, str, date, int], int] = defaultdict(int)
    for r in rows:
        ranked = domain.is_ranked(r.enrolled, r.visibility, r.active)
        flipped = await session.execute(
            sa.update(TOTALS)
            .where(person_totals(r.tenant_id, r.employee_id), TOTALS.c.ranked.is_distinct_from(ranked))
            .values(ranked=ranked)
            .returning(TOTALS.c.window, TOTALS.c.window_start, TOTALS.c.points)
        )
        for f in flipped.all():
            counts[(r.tenant_id, f.window, f.window_start, f.points)] += 1 if ranked else -1
        for tbl, rows_of_person in (
            (TOTALS, person_totals(r.tenant_id, r.employee_id)),
            (
                CHALLENGE_TOTALS,
                sa.and_(CHALLENGE_TOTALS.c.tenant_id == r.tenant_id, CHALLENGE_TOTALS.c.employee_id == r.employee_id),
            ),
        ):
            await session.execute(
                sa.update(tbl)
                .where(rows_of_person)
                .where(sa.or_(tbl.c.ranked.is_distinct_from(ranked), tbl.c.team.is_distinct_from(r.team)))
                .values(ranked=ranked, team=r.team)
            )
    await move_score_counts(session, counts)
    await notify_boards(session, {t for t, _ in ks})


async def is_erased(session: AsyncSession, tenant_id: str, employee_id: str) -> bool:
    """Whether this person was erased (their live streams end, no ticket opens a new one)."""
    return bool(await erased(session, [(tenant_id, employee_id)]))


async def erase(session: AsyncSession, tenant_id: str, employee_id: str, at: datetime) -> str | None:
    """Forget a person: every row naming them now names a random pseudonym, so sums, totals and
    everyone else's ranks stay as they were; the pseudonym shows as "Anonymous". Returns it."""
    if not await pseudonyms.TOMBSTONES.add(session, tenant_id, employee_id, at):  # erased before
        return None
    pseudonym = f"erased-{uuid.uuid4().hex}"
    await notify_erased(session, tenant_id, employee_id)
    await audit.forget_person(session, tenant_id, employee_id)
    await erasure.scrub_outbox(session, tenant_id, employee_id)  # points events naming them
    for tbl in (
        LEDGER,
        TOTALS,
        BALANCES,
        STATS,
        BADGES,
        DAILY_COUNTS,
        CHALLENGE_TOTALS,
        CHALLENGE_WINNERS,
        REDEMPTIONS,
    ):
        rows_of_person = (
            person_totals(tenant_id, employee_id)
            if tbl is TOTALS
            else sa.and_(tbl.c.tenant_id == tenant_id, tbl.c.employee_id == employee_id)
        )
        await session.execute(sa.update(tbl).where(rows_of_person).values(employee_id=pseudonym))
    # as an admin: who set rules, created rewards and challenges, reversed someone's points
    for tbl in (RULE_SETS, REWARDS, CHALLENGES):
        await session.execute(
            sa.update(tbl)
            .where(tbl.c.tenant_id == tenant_id, tbl.c.created_by == employee_id)
            .values(created_by=pseudonym)
        )
    mark = f"(by {employee_id})"
    await session.execute(
        sa.update(LEDGER)
        .where(LEDGER.c.tenant_id == tenant_id, LEDGER.c.reason.contains(mark, autoescape=True))
        .values(reason=sa.func.replace(LEDGER.c.reason, mark, f"(by {pseudonym})"))
    )
    old: Any = (
        await session.execute(
            sa.delete(MEMBERS)
            .where(MEMBERS.c.tenant_id == tenant_id, MEMBERS.c.employee_id == employee_id)
            .returning(MEMBERS.c.team, MEMBERS.c.enrolled, MEMBERS.c.visibility, MEMBERS.c.active)
        )
    ).first()
    await session.execute(
        sa.insert(MEMBERS).values(
            tenant_id=tenant_id,
            employee_id=pseudonym,
            name=None,
            team=old.team if old else None,
            # hidden stays hidden (their rows are not ranked, and must stay so); anyone else is shown
            # as "Anonymous" where they were
            visibility="hidden" if old is not None and old.visibility == "hidden" else "anonymous",
            enrolled=old.enrolled if old else True,
            active=old.active if old else True,  # a deactivated person's rows stay off the boards
            membership_at=at,
            updated_at=at,
        )
    )
    await notify_boards(session, [tenant_id])
    return pseudonym
