"""Re-announce what decides a board (issue 13): sharing refuses a share the board would not show,
against copies it keeps from content's events. Items, members and waves that existed before those
copies did (or before the events carried what the copies need) reach sharing by this: for one
tenant, every wave (wave.updated), every membership (member.updated) and every announced item
(content.updated, with its audience), through the outbox.

Waves and memberships carry the row's own ``updated_at``: a copy that already holds a newer change
keeps it. Items carry the time of this run: sharing's copies made before ``audience`` was kept are
newer than the item's row but lack its audience (a change committed while this runs may be
overtaken by the state read here; run it again after, or when the tenant is quiet).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.events.content import MemberUpdated
from advocacy_content import domain
from advocacy_content.adapters.events import emit, now, updated_event
from advocacy_content.db import ContentItem, Member, Wave
from advocacy_content.features.waves import wave_event

# Rows read per query: one tenant may hold a large catalogue; memory stays bounded.
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Announced:
    waves: int
    members: int
    items: int


async def announce_tenant(session: AsyncSession, tenant_id: str) -> Announced:
    """Write the events to the outbox in the caller's transaction; returns how many of each."""
    at = now()
    waves = (await session.scalars(select(Wave).where(Wave.tenant_id == tenant_id).order_by(col(Wave.id)))).all()
    for w in waves:
        await emit(session, tenant_id, wave_event(w, w.updated_at), w.updated_at)
    members = 0
    after = ""
    while True:
        rows = (
            await session.scalars(
                select(Member)
                .where(Member.tenant_id == tenant_id, col(Member.employee_id) > after)
                .order_by(col(Member.employee_id))
                .limit(CHUNK)
            )
        ).all()
        for m in rows:
            event = MemberUpdated(
                employee_id=m.employee_id,
                enrolled=m.enrolled,
                programme_roles=list(m.programme_roles),
                leaderboard=m.leaderboard,
                name=m.name,
                team=m.team,
                updated_at=m.updated_at,
            )
            await emit(session, tenant_id, event, m.updated_at)
        members += len(rows)
        if len(rows) < CHUNK:
            break
        after = rows[-1].employee_id
    items = 0
    after = ""
    while True:
        found = (
            await session.scalars(
                select(ContentItem)
                .where(
                    ContentItem.tenant_id == tenant_id,
                    col(ContentItem.status).in_(domain.Status.ANNOUNCED),
                    col(ContentItem.id) > after,
                )
                .order_by(col(ContentItem.id))
                .limit(CHUNK)
            )
        ).all()
        for item in found:
            await emit(session, tenant_id, updated_event(item), at)
        items += len(found)
        if len(found) < CHUNK:
            break
        after = found[-1].id
    return Announced(len(waves), members, items)
