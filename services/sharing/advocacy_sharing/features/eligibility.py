"""Whether an employee may share an item: exactly when content's board would show it to them.

The predicate is :func:`advocacy_common.eligibility.refusal`, the one content's board uses; this
module feeds it sharing's copies of what content knows (the item's audience and expiry, the person's
membership, the tenant's roll-out waves), kept from content's events, and keeps those copies.
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
from advocacy_common.events.content import MemberUpdated, WaveUpdated
from advocacy_sharing.db import ContentCopy, MemberCopy, WaveCopy

_MEMBERS = table_of(MemberCopy)
_WAVES = table_of(WaveCopy)


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


async def check(session: AsyncSession, who: Principal, content: ContentCopy, now: datetime) -> None:
    """Raise 403 (``code``: the reason, one of :class:`advocacy_common.eligibility.Reason`) unless
    the item is on ``who``'s board at ``now``."""
    member = await session.get(MemberCopy, (who.tenant_id, who.sub))
    found = eligibility.refusal(
        status=content.status,
        expires_at=content.expires_at,
        audience=content.audience or {},
        employee_id=who.sub,
        viewer=eligibility.Viewer(team=who.team, programme_roles=frozenset(member.programme_roles if member else ())),
        enrolled=member.enrolled if member else True,
        waves=await wave_views(session, who.tenant_id),
        now=now,
    )
    if found is not None:
        raise Forbidden(found.message, code=found.code, details=[{"field": "content_id", "message": found.message}])


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
    """Erasure: the membership copy goes, and the person leaves every wave copy (content removes
    them from its waves without a wave event)."""
    await session.execute(
        sa.delete(MemberCopy).where(col(MemberCopy.tenant_id) == tenant_id, col(MemberCopy.employee_id) == employee_id)
    )
    await session.execute(
        sa.update(WaveCopy)
        .where(col(WaveCopy.tenant_id) == tenant_id, col(WaveCopy.employees).contains([employee_id]))
        .values(employees=sa.func.array_remove(col(WaveCopy.employees), employee_id))
    )


async def apply_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """The membership and wave events among content's (others are ignored)."""
    for env in events:
        if isinstance(env.data, MemberUpdated):
            await apply_member(session, env)
        elif isinstance(env.data, WaveUpdated):
            await apply_wave(session, env)
