"""The directory's rows as the rest of content and the other services see them: a provisioned
person's full state (``member.provisioned``), teams and their sizes (``team.updated``), whether a
person is switched off, and what erasure removes. SCIM's use cases (features/scim.py) and erasure
(features/members.py) both stand on it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.events.content import MemberProvisioned, TeamUpdated
from advocacy_common.tenant import DirectorySettings
from advocacy_content.adapters.events import emit
from advocacy_content.db import ScimGroupMembers, ScimGroups, ScimUsers

U, G, GM = ScimUsers, ScimGroups, ScimGroupMembers


@dataclass(frozen=True)
class Standing:
    """What the board needs from the directory about one person."""

    active: bool
    team: str | None


async def standing(session: AsyncSession, tenant_id: str, employee_id: str) -> Standing | None:
    """The person's directory standing, or None when they were never provisioned (tokens alone)."""
    row = (
        await session.execute(
            sa.select(U.c.active, U.c.team).where(U.c.tenant_id == tenant_id, U.c.employee_id == employee_id)
        )
    ).first()
    return Standing(active=row.active, team=row.team) if row else None


async def provisioned_event(session: AsyncSession, tenant_id: str, user_id: str) -> MemberProvisioned | None:
    """The person's whole record; the manager named by their employee id (None when the manager is
    not provisioned in this tenant)."""
    m = U.alias("manager")
    row = (
        await session.execute(
            sa.select(U, m.c.employee_id.label("manager_employee_id"))
            .outerjoin(m, sa.and_(m.c.tenant_id == U.c.tenant_id, m.c.id == U.c.manager))
            .where(U.c.tenant_id == tenant_id, U.c.id == user_id)
        )
    ).first()
    if row is None:
        return None
    return MemberProvisioned(
        employee_id=row.employee_id,
        active=row.active,
        user_name=row.user_name,
        display_name=row.display_name,
        team=row.team,
        department=row.department,
        location=row.location,
        manager_id=row.manager_employee_id,
        employee_number=row.employee_number,
        updated_at=row.updated_at,
    )


async def group_team_of(session: AsyncSession, tenant_id: str, user_id: str) -> str | None:
    """In ``team_from = group``: the person's team is the name of the first (by name) group they are in."""
    team: str | None = (
        await session.execute(
            sa.select(sa.func.min(G.c.display_name))
            .select_from(GM.join(G, sa.and_(G.c.tenant_id == GM.c.tenant_id, G.c.id == GM.c.group_id)))
            .where(GM.c.tenant_id == tenant_id, GM.c.user_id == user_id)
        )
    ).scalar_one_or_none()
    return team


async def refresh_group_teams(
    session: AsyncSession, tenant_id: str, user_ids: Iterable[str], settings: DirectorySettings, at: datetime
) -> set[str]:
    """After group changes: set each person's team from their groups (``team_from = group``),
    announce everyone whose team changed, and return the teams touched (old and new names)."""
    touched: set[str] = set()
    if settings.team_from != "group":
        return touched
    for user_id in sorted(set(user_ids)):
        row = (
            await session.execute(
                sa.select(U.c.team).where(U.c.tenant_id == tenant_id, U.c.id == user_id).with_for_update()
            )
        ).first()
        if row is None:
            continue
        team = await group_team_of(session, tenant_id, user_id)
        if team == row.team:
            continue
        await session.execute(
            sa.update(U).where(U.c.tenant_id == tenant_id, U.c.id == user_id).values(team=team, updated_at=at)
        )
        touched |= {t for t in (row.team, team) if t}
        event = await provisioned_event(session, tenant_id, user_id)
        if event is not None:
            await emit(session, tenant_id, event, at)
    return touched


async def announce_teams(
    session: AsyncSession, tenant_id: str, teams: Iterable[str], settings: DirectorySettings, at: datetime
) -> None:
    """``team.updated`` for each team: its size in active provisioned people, and whether it is gone
    (group teams: no group has the name any more; attribute teams: nobody carries it)."""
    for team in sorted(set(teams)):
        size = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(U)
                .where(U.c.tenant_id == tenant_id, U.c.team == team, U.c.active.is_(True))
            )
        ).scalar_one()
        if settings.team_from == "group":
            exists = await session.scalar(
                sa.select(sa.literal(True)).where(
                    sa.exists().where(G.c.tenant_id == tenant_id, G.c.display_name == team)
                )
            )
        else:
            exists = await session.scalar(
                sa.select(sa.literal(True)).where(sa.exists().where(U.c.tenant_id == tenant_id, U.c.team == team))
            )
        await emit(session, tenant_id, TeamUpdated(team=team, size=size, deleted=not exists, updated_at=at), at)


async def forget_person(session: AsyncSession, tenant_id: str, employee_id: str) -> str | None:
    """Erasure: delete the person's directory row (their group memberships go with it). Returns the
    team they were counted in, whose size the caller announces."""
    row = (
        await session.execute(
            sa.delete(U).where(U.c.tenant_id == tenant_id, U.c.employee_id == employee_id).returning(U.c.team)
        )
    ).first()
    return row.team if row else None
