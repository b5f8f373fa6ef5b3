"""The directory's rows as the rest of content and the other services see them: a provisioned
person's full state (``member.provisioned``), teams and their sizes (``team.updated``), whether a
person is switched off, and what erasure removes. SCIM's use cases (features/scim.py) and erasure
(features/members.py) both stand on it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
    department: str | None = None
    location: str | None = None


async def standing(session: AsyncSession, tenant_id: str, employee_id: str) -> Standing | None:
    """The person's directory standing, or None when they were never provisioned (tokens alone)."""
    row = (
        await session.execute(
            sa.select(U.c.active, U.c.team, U.c.department, U.c.location).where(
                U.c.tenant_id == tenant_id, U.c.employee_id == employee_id
            )
        )
    ).first()
    if row is None:
        return None
    return Standing(active=row.active, team=row.team, department=row.department, location=row.location)


def _provisioned(row: Any) -> MemberProvisioned:
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
        preferred_language=language_of(row.resource),
    )


# A BCP 47 language tag as directories send it ("de", "de-DE", "en_US"): anything else is dropped.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,4}")


def language_of(resource: Any) -> str | None:
    """The person's language from their stored SCIM resource: ``preferredLanguage``, else ``locale``
    (RFC 7643 4.1.1), when it is a language tag."""
    if not isinstance(resource, dict):
        return None
    for key in ("preferredLanguage", "locale"):
        value = resource.get(key)
        if isinstance(value, str) and len(value) <= 35 and _LANGUAGE_TAG.fullmatch(value.strip()):
            return value.strip()
    return None


def _with_manager() -> sa.Select[Any]:
    """People with their manager named by employee id (None when the manager is not provisioned)."""
    m = U.alias("manager")
    return sa.select(U, m.c.employee_id.label("manager_employee_id")).outerjoin(
        m, sa.and_(m.c.tenant_id == U.c.tenant_id, m.c.id == U.c.manager)
    )


async def provisioned_event(session: AsyncSession, tenant_id: str, user_id: str) -> MemberProvisioned | None:
    """The person's whole record (``member.provisioned``)."""
    row = (await session.execute(_with_manager().where(U.c.tenant_id == tenant_id, U.c.id == user_id))).first()
    return _provisioned(row) if row is not None else None


async def refresh_group_teams(
    session: AsyncSession, tenant_id: str, user_ids: Iterable[str], settings: DirectorySettings, at: datetime
) -> set[str]:
    """After group changes: set each person's team from their groups (``team_from = group``: the first
    group by name), announce everyone whose team changed, and return the teams touched (old and new
    names). A few statements whatever the number of people (a group PATCH may move 1,000)."""
    touched: set[str] = set()
    ids = sorted(set(user_ids))
    if settings.team_from != "group" or not ids:
        return touched
    first_group = (
        sa.select(sa.func.min(G.c.display_name))
        .select_from(GM.join(G, sa.and_(G.c.tenant_id == GM.c.tenant_id, G.c.id == GM.c.group_id)))
        .where(GM.c.tenant_id == U.c.tenant_id, GM.c.user_id == U.c.id)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            sa.select(U.c.id, U.c.team, first_group.label("new_team"))
            .where(U.c.tenant_id == tenant_id, U.c.id.in_(ids))
            .order_by(U.c.id)
            .with_for_update(of=U)
        )
    ).all()
    changed = {r.id: r.new_team for r in rows if r.new_team != r.team}
    if not changed:
        return touched
    for r in rows:
        if r.id in changed:
            touched |= {t for t in (r.team, r.new_team) if t}
    values = sa.values(sa.column("id", sa.Text), sa.column("team", sa.Text), name="moved").data(sorted(changed.items()))
    await session.execute(
        sa.update(U).where(U.c.tenant_id == tenant_id, U.c.id == values.c.id).values(team=values.c.team, updated_at=at)
    )
    people = (
        await session.execute(
            _with_manager().where(U.c.tenant_id == tenant_id, U.c.id.in_(sorted(changed))).order_by(U.c.id)
        )
    ).all()
    for row in people:
        await emit(session, tenant_id, _provisioned(row), at)
    return touched


async def announce_teams(
    session: AsyncSession, tenant_id: str, teams: Iterable[str], settings: DirectorySettings, at: datetime
) -> None:
    """``team.updated`` for each team: its size in active provisioned people (an erased employee id
    provisioned again is not one: ``erased_at``), and whether it is gone (group teams: no group has
    the name any more; attribute teams: nobody carries it)."""
    for team in sorted(set(teams)):
        size = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(U)
                .where(U.c.tenant_id == tenant_id, U.c.team == team, U.c.active.is_(True), U.c.erased_at.is_(None))
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
