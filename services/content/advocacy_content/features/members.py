"""Programme members: followed topics, membership (enrolment, programme roles, leaderboard
visibility) and erasure. Someone with no row has the defaults: enrolled, no programme role, ranked."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, delete, update

from advocacy_common import audit, eligibility, erasure
from advocacy_common.auth.principal import Principal
from advocacy_common.db import table_of
from advocacy_common.errors import Forbidden
from advocacy_common.events.content import MemberErased, MemberUpdated
from advocacy_common.tombstones import hold_person
from advocacy_content import domain
from advocacy_content.adapters import directory
from advocacy_content.adapters.events import emit, now
from advocacy_content.adapters.tombstones import TOMBSTONES
from advocacy_content.db import (
    CoachingReply,
    CoachingRequest,
    ContentItem,
    Member,
    PolicyVersion,
    SharedContent,
    Wave,
)
from advocacy_content.features import tenant_settings
from advocacy_content.features.waves import wave_views
from advocacy_content.schemas import MembershipIn, MembershipPublic, TopicsIn, TopicsPublic, WaveRef

# What replaces an erased person's id where a row must keep an author (content they created).
ERASED = "erased"
# The error code an erased caller is refused with (403), as sharing refuses their shares.
ERASED_CODE = "erased"

_MEMBER = table_of(Member)


async def load_member(session: AsyncSession, tenant_id: str, employee_id: str) -> Member | None:
    return await session.get(Member, (tenant_id, employee_id))


async def refuse_erased(session: AsyncSession, who: Principal, *, hold: bool = False) -> None:
    """403 ``erased`` when the caller was erased: a token issued before the erasure, or the same
    employee id provisioned again (the tombstone stays; docs/identity.md, "Leavers and rehires").
    One primary-key lookup of the keyed tombstone, as sharing refuses their shares.

    ``hold``: the caller is about to write on their own behalf (a suggestion, a coaching thread or
    reply, their topics or membership). The person's erasure lock is then held until the
    transaction ends, as sharing's shares hold it (``Tombstones.hold``): the write either commits
    before an erasure starts, which then deletes or unlinks it, or waits for the erasure and is
    refused. Taken before any row lock of the write, as the erasure takes it before its rows."""
    check = TOMBSTONES.hold if hold else TOMBSTONES.is_erased
    if await check(session, who.tenant_id, who.sub):
        raise Forbidden("this person's data was erased: the board and sharing are closed to them", code=ERASED_CODE)


async def require_active(session: AsyncSession, who: Principal, *, writes: bool = False) -> directory.Standing | None:
    """The caller's directory standing; 403 when the identity provider switched them off (SCIM
    ``active: false``): the board, its items and suggestions are closed to them. People who were
    never provisioned (tokens alone) have no standing and pass. 403 ``erased`` when the caller was
    erased; ``writes``: their erasure lock held to the commit (:func:`refuse_erased`)."""
    await refuse_erased(session, who, hold=writes)
    standing = await directory.standing(session, who.tenant_id, who.sub)
    if standing is not None and not standing.active:
        raise Forbidden("you are deactivated in the company directory: the board and sharing are closed to you")
    return standing


def _team(who: Principal, standing: directory.Standing | None) -> str | None:
    """A provisioned person's team is the directory's; otherwise the token's."""
    return eligibility.team_of(standing.team if standing is not None else None, who.team)


async def viewer_for(
    session: AsyncSession,
    who: Principal,
    member: Member | None = None,
    standing: directory.Standing | None = None,
) -> domain.Viewer:
    """Who is looking at the board: team, department and location from the directory (``standing``:
    the caller's, None for someone never provisioned), programme roles and topics from membership."""
    m = member or await load_member(session, who.tenant_id, who.sub)
    return domain.Viewer(
        team=_team(who, standing),
        programme_roles=frozenset(m.programme_roles if m else ()),
        topics=frozenset(m.topics if m else ()),
        department=standing.department if standing is not None else None,
        location=standing.location if standing is not None else None,
    )


async def gate_for(
    session: AsyncSession, who: Principal, member: Member | None, standing: directory.Standing | None = None
) -> domain.Gate:
    return domain.board_gate(
        employee_id=who.sub,
        team=_team(who, standing),
        enrolled=member.enrolled if member else True,
        waves=await wave_views(session, who.tenant_id),
        now=now(),
    )


# -- topics -------------------------------------------------------------------------------------------
async def get_topics(session: AsyncSession, who: Principal) -> TopicsPublic:
    m = await load_member(session, who.tenant_id, who.sub)
    return TopicsPublic(topics=list(m.topics) if m else [])


async def put_topics(session: AsyncSession, who: Principal, body: TopicsIn) -> TopicsPublic:
    """The caller's followed topics (their member row, with their name and team, made if need be)."""
    await refuse_erased(session, who, hold=True)  # held to the commit: a racing erasure deletes or refuses it
    topics = domain.normalize_topics(body.topics)
    stmt = pg_insert(_MEMBER).values(
        tenant_id=who.tenant_id,
        employee_id=who.sub,
        enrolled=True,
        programme_roles=[],
        leaderboard="ranked",
        topics=topics,
        name=who.name,
        team=who.team,
        updated_at=now(),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={"topics": stmt.excluded.topics, "updated_at": stmt.excluded.updated_at},
        )
    )
    return TopicsPublic(topics=topics)


# -- membership ---------------------------------------------------------------------------------------
async def get_membership(session: AsyncSession, who: Principal) -> MembershipPublic:
    m = await load_member(session, who.tenant_id, who.sub)
    gate = await gate_for(session, who, m, await directory.standing(session, who.tenant_id, who.sub))
    wave = gate.wave
    return MembershipPublic(
        employee_id=who.sub,
        enrolled=m.enrolled if m else True,
        programme_roles=list(m.programme_roles) if m else [],
        leaderboard=m.leaderboard if m else "ranked",
        board_open=gate.open,
        notice=gate.notice,
        wave=WaveRef(id=wave.id, name=wave.name, starts_at=wave.starts_at) if wave else None,
    )


async def put_membership(session: AsyncSession, who: Principal, body: MembershipIn) -> MembershipPublic:
    """Opt in or out, choose programme roles and leaderboard visibility; emits member.updated."""
    await refuse_erased(session, who, hold=True)  # as put_topics: the row names them
    at = now()
    roles: list[str] = [r for r in domain.PROGRAMME_ROLES if r in body.programme_roles]
    m = await session.get(Member, (who.tenant_id, who.sub), with_for_update=True)
    state: tuple[bool, list[str], str, str | None, str | None] = (
        body.enrolled,
        roles,
        body.leaderboard,
        who.name,
        who.team,
    )
    if m is not None and (m.enrolled, list(m.programme_roles), m.leaderboard, m.name, m.team) == state:
        return await get_membership(session, who)
    if m is None:
        # a concurrent first write for the same person: the insert below waits, then updates
        stmt = pg_insert(_MEMBER).values(
            tenant_id=who.tenant_id,
            employee_id=who.sub,
            enrolled=True,
            programme_roles=[],
            leaderboard="ranked",
            topics=[],
            updated_at=at,
        )
        await session.execute(stmt.on_conflict_do_nothing())
        m = await session.get(Member, (who.tenant_id, who.sub), with_for_update=True, populate_existing=True)
        assert m is not None
    m.enrolled, m.programme_roles, m.leaderboard, m.name, m.team = state
    m.updated_at = at
    await emit(
        session,
        who.tenant_id,
        MemberUpdated(
            employee_id=who.sub,
            enrolled=body.enrolled,
            programme_roles=roles,
            leaderboard=body.leaderboard,
            name=who.name,
            team=who.team,
            updated_at=at,
        ),
        at,
    )
    await session.flush()
    return await get_membership(session, who)


# -- erasure ------------------------------------------------------------------------------------------
async def erase_member(session: AsyncSession, who: Principal, employee_id: str) -> None:
    """Forget the person: their directory entry (SCIM user, group memberships), their topics and
    membership, what they shared, their coaching threads; unlink them from suggestions, reviews,
    replies, waves and policy versions. Emits member.erased (every other service forgets them too).
    Erasing twice is harmless."""
    t = who.tenant_id
    at = now()
    # the person's erasure lock before anything is unlinked: a write of theirs that holds it (a
    # suggestion, require_active(writes=True)) commits first and is unlinked below, or waits for
    # this transaction and is refused
    await hold_person(session, t, employee_id)
    await session.execute(delete(Member).where(col(Member.tenant_id) == t, col(Member.employee_id) == employee_id))
    # the directory: their SCIM user and group memberships; their team is one person smaller
    team = await directory.forget_person(session, t, employee_id)
    if team is not None:
        await directory.announce_teams(session, t, {team}, (await tenant_settings.current(session, t)).directory, at)
    await session.execute(
        delete(SharedContent).where(col(SharedContent.tenant_id) == t, col(SharedContent.employee_id) == employee_id)
    )
    await session.execute(
        delete(CoachingRequest).where(
            col(CoachingRequest.tenant_id) == t, col(CoachingRequest.requester_id) == employee_id
        )
    )
    await session.execute(
        update(CoachingReply)
        .where(col(CoachingReply.tenant_id) == t, col(CoachingReply.author_id) == employee_id)
        .values(author_id=None)
    )
    items = ContentItem
    await session.execute(
        update(items).where(col(items.tenant_id) == t, col(items.proposer_id) == employee_id).values(proposer_id=None)
    )
    await session.execute(
        update(items).where(col(items.tenant_id) == t, col(items.created_by) == employee_id).values(created_by=ERASED)
    )
    await session.execute(
        update(items).where(col(items.tenant_id) == t, col(items.reviewed_by) == employee_id).values(reviewed_by=None)
    )
    await session.execute(
        sa.text(
            "UPDATE content_items SET approvals = (SELECT coalesce(jsonb_agg(CASE WHEN e->>'by' = :emp"
            " THEN jsonb_set(e, '{by}', 'null'::jsonb) ELSE e END ORDER BY ord), '[]'::jsonb)"
            " FROM jsonb_array_elements(approvals) WITH ORDINALITY AS a(e, ord))"
            " WHERE tenant_id = :t AND approvals @> jsonb_build_array(jsonb_build_object('by', CAST(:emp AS text)))"
        ),
        {"t": t, "emp": employee_id},
    )
    await session.execute(
        update(PolicyVersion)
        .where(col(PolicyVersion.tenant_id) == t, col(PolicyVersion.updated_by) == employee_id)
        .values(updated_by=ERASED)
    )
    await session.execute(
        update(Wave)
        .where(col(Wave.tenant_id) == t, col(Wave.employees).contains([employee_id]))
        .values(employees=sa.func.array_remove(col(Wave.employees), employee_id))
    )
    await session.execute(
        update(Wave).where(col(Wave.tenant_id) == t, col(Wave.created_by) == employee_id).values(created_by=ERASED)
    )
    await audit.forget_person(session, t, employee_id)
    # the partner feed drops later events about them; the outbox and webhook log forget them
    await TOMBSTONES.add(session, t, employee_id, at)
    await erasure.scrub_outbox(session, t, employee_id)
    await erasure.scrub_webhook_deliveries(session, t, employee_id)
    await audit.record(session, who.tenant_id, who.sub, "member.erased", at=at)  # not who: the entry must not name them
    await emit(session, t, MemberErased(employee_id=employee_id, erased_at=at), at)
