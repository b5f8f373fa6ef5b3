"""Whether an employee may share an item: exactly when content's board would show it to them.

The predicate is :func:`advocacy_common.eligibility.refusal`, the one content's board uses; this
module feeds it sharing's copies of what content knows (the item's audience and expiry, the person's
membership, the tenant's roll-out waves, the company directory's record of the person), kept from
content's events, and keeps those copies.

The directory (issue 17) when it lists the person: ``active: false`` refuses every new share (403
``inactive``); their team there is the team eligibility judges, and the team their new shares carry
(so boards downstream follow the directory, not whichever token was presented last); department
and location are matched against the item's audience. A person the directory does not list is
judged as before: by their token's team, active.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import eligibility
from advocacy_common.auth import Principal
from advocacy_common.db import table_of
from advocacy_common.errors import Forbidden
from advocacy_common.events import Envelope
from advocacy_common.events.content import MemberProvisioned, MemberUpdated, WaveUpdated
from advocacy_sharing.adapters.tombstones import TOMBSTONES
from advocacy_sharing.db import ContentCopy, DirectoryCopy, MemberCopy, WaveCopy

_MEMBERS = table_of(MemberCopy)
_WAVES = table_of(WaveCopy)
_DIRECTORY = table_of(DirectoryCopy)


async def wave_views(session: AsyncSession, tenant_id: str) -> list[eligibility.WaveView]:
    rows = (
        await session.scalars(select(WaveCopy).where(WaveCopy.tenant_id == tenant_id, col(WaveCopy.deleted).is_(False)))
    ).all()
    return [
        eligibility.WaveView(
            id=w.wave_id, name=w.name, starts_at=w.starts_at, teams=frozenset(w.teams), employees=frozenset(w.employees)
        )
        for w in rows
    ]


async def check(session: AsyncSession, who: Principal, content: ContentCopy, now: datetime) -> str | None:
    """Raise 403 (``code``: the reason, one of :class:`advocacy_common.eligibility.Reason`) unless
    the item is on ``who``'s board at ``now``. Returns the sharer's team: the directory's when it
    names one, the token's otherwise."""
    member = await session.get(MemberCopy, (who.tenant_id, who.sub))
    listed = await session.get(DirectoryCopy, (who.tenant_id, who.sub))
    team = eligibility.team_of(listed.team if listed is not None else None, who.team)
    found = eligibility.refusal(
        status=content.status,
        expires_at=content.expires_at,
        audience=content.audience or {},
        employee_id=who.sub,
        viewer=eligibility.Viewer(
            team=team,
            programme_roles=frozenset(member.programme_roles if member else ()),
            department=listed.department if listed else None,
            location=listed.location if listed else None,
        ),
        enrolled=member.enrolled if member else True,
        waves=await wave_views(session, who.tenant_id),
        now=now,
        active=listed.active if listed else True,
    )
    if found is not None:
        field = "employee_id" if found.code == eligibility.Reason.inactive else "content_id"
        raise Forbidden(found.message, code=found.code, details=[{"field": field, "message": found.message}])
    return team


# -- the copies -----------------------------------------------------------------------------------------
async def apply_member(session: AsyncSession, env: Envelope[MemberUpdated]) -> None:
    d = env.data
    stmt = pg_insert(_MEMBERS).values(
        tenant_id=env.tenant_id,
        employee_id=d.employee_id,
        enrolled=d.enrolled,
        programme_roles=list(d.programme_roles),
        updated_at=d.updated_at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={k: stmt.excluded[k] for k in ("enrolled", "programme_roles", "updated_at")},
            where=_MEMBERS.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def apply_provisioned(session: AsyncSession, env: Envelope[MemberProvisioned]) -> None:
    """The directory's record replaces the copy unless the copy is newer. An erased person's record
    is not kept (a late or replayed event must not bring their copy back)."""
    d = env.data
    if await TOMBSTONES.is_erased(session, env.tenant_id, d.employee_id):
        return
    values: dict[str, Any] = {
        "tenant_id": env.tenant_id,
        "employee_id": d.employee_id,
        "active": d.active,
        "team": d.team,
        "department": d.department,
        "location": d.location,
        "updated_at": d.updated_at,
    }
    stmt = pg_insert(_DIRECTORY).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("tenant_id", "employee_id")},
            where=_DIRECTORY.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def apply_wave(session: AsyncSession, env: Envelope[WaveUpdated]) -> None:
    d = env.data
    values: dict[str, Any] = {
        "tenant_id": env.tenant_id,
        "wave_id": d.wave_id,
        "name": d.name,
        "starts_at": d.starts_at,
        "teams": list(d.teams),
        "employees": list(d.employees),
        "deleted": d.deleted,
        "updated_at": d.updated_at,
    }
    stmt = pg_insert(_WAVES).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "wave_id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("tenant_id", "wave_id")},
            where=_WAVES.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def forget_member(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Erasure: the membership and directory copies go, and the person leaves every wave copy
    (content removes them from its waves without a wave event)."""
    for copy in (MemberCopy, DirectoryCopy):
        await session.execute(
            sa.delete(copy).where(col(copy.tenant_id) == tenant_id, col(copy.employee_id) == employee_id)
        )
    await session.execute(
        sa.update(WaveCopy)
        .where(col(WaveCopy.tenant_id) == tenant_id, col(WaveCopy.employees).contains([employee_id]))
        .values(employees=sa.func.array_remove(col(WaveCopy.employees), employee_id))
    )


async def apply_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """The membership, directory and wave events among content's (others are ignored)."""
    for env in events:
        if isinstance(env.data, MemberUpdated):
            await apply_member(session, env)
        elif isinstance(env.data, MemberProvisioned):
            await apply_provisioned(session, env)
        elif isinstance(env.data, WaveUpdated):
            await apply_wave(session, env)
