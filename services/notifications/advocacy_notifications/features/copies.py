"""Notifications' copies of what content knows: people (membership and the company directory),
content items (title, link, audience, status), roll-out waves and tenant settings, kept from
content's events; and from sharing's, who shared what and when (the nudge, the expiry notice).

An erased person (``member.erased``) is forgotten at once: their copy, preferences, digest state and
every message to them (pending ones are never sent); a keyed tombstone keeps a late or replayed
event from bringing their copy back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from advocacy_common import erasure
from advocacy_common.db import table_of
from advocacy_common.events import Envelope
from advocacy_common.events.content import (
    ContentArchived,
    ContentExpired,
    ContentPublished,
    ContentUpdated,
    MemberErased,
    MemberProvisioned,
    MemberUpdated,
    TenantSettingsUpdated,
    WaveUpdated,
)
from advocacy_common.events.metrics import WeeklyReportComposed
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.tenant_store import apply_tenant_settings
from advocacy_notifications import domain
from advocacy_notifications.adapters.tombstones import TOMBSTONES
from advocacy_notifications.db import (
    ContentCopy,
    DigestState,
    Member,
    MemberLanguage,
    Message,
    Preference,
    QuietHoursRow,
    ReportAdmin,
    SharedItem,
    Suppression,
    WaveCopy,
)
from advocacy_notifications.features import chat, mail, reports

_MEMBERS = table_of(Member)
_CONTENT = table_of(ContentCopy)
_SHARED = table_of(SharedItem)
_WAVES = table_of(WaveCopy)


async def apply_member(session: AsyncSession, env: Envelope[MemberUpdated]) -> None:
    d = env.data
    if await TOMBSTONES.is_erased(session, env.tenant_id, d.employee_id):
        return
    values: dict[str, Any] = {
        "tenant_id": env.tenant_id,
        "employee_id": d.employee_id,
        "enrolled": d.enrolled,
        "programme_roles": list(d.programme_roles),
        "member_team": d.team,
        "leaderboard": d.leaderboard,
        "membership_at": d.updated_at,
    }
    stmt = pg_insert(_MEMBERS).values(**values, name=d.name, team=d.team)
    ex = stmt.excluded
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={
                "enrolled": ex.enrolled,
                "programme_roles": ex.programme_roles,
                "leaderboard": ex.leaderboard,
                "member_team": ex.member_team,
                "membership_at": ex.membership_at,
                # the directory's name and team win when it lists the person
                "name": sa.case((_MEMBERS.c.directory_at.is_(None), ex.name), else_=_MEMBERS.c.name),
                "team": sa.case((_MEMBERS.c.directory_at.is_(None), ex.team), else_=_MEMBERS.c.team),
            },
            where=sa.or_(_MEMBERS.c.membership_at.is_(None), _MEMBERS.c.membership_at <= ex.membership_at),
        )
    )


async def apply_provisioned(session: AsyncSession, env: Envelope[MemberProvisioned]) -> None:
    """The directory's record: active flag, address, name, team, department, location."""
    d = env.data
    if await TOMBSTONES.is_erased(session, env.tenant_id, d.employee_id):
        return
    values: dict[str, Any] = {
        "tenant_id": env.tenant_id,
        "employee_id": d.employee_id,
        "active": d.active,
        "email": domain.email_address(d.user_name),
        "name": d.display_name,
        "team": d.team,
        "directory_team": d.team,
        "department": d.department,
        "location": d.location,
        "directory_at": d.updated_at,
        "directory_language": d.preferred_language,
    }
    stmt = pg_insert(_MEMBERS).values(**values)
    ex = stmt.excluded
    set_: dict[str, Any] = {k: ex[k] for k in values if k not in ("tenant_id", "employee_id", "team")}
    # a directory without a team for the person leaves membership's team
    set_["team"] = sa.func.coalesce(ex.team, _MEMBERS.c.member_team)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_=set_,
            where=sa.or_(_MEMBERS.c.directory_at.is_(None), _MEMBERS.c.directory_at <= ex.directory_at),
        )
    )


async def apply_content(session: AsyncSession, env: Envelope[Any]) -> None:
    d = env.data
    if isinstance(d, ContentPublished | ContentUpdated):
        at = d.published_at if isinstance(d, ContentPublished) else d.updated_at
        values: dict[str, Any] = {
            "tenant_id": env.tenant_id,
            "content_id": d.content_id,
            "title": d.title,
            "url": d.url,
            "audience": d.audience.model_dump(mode="json"),
            "networks": sorted(str(n) for n in d.captions),
            "status": "published" if isinstance(d, ContentPublished) else d.status,
            "published_at": at,
            "expires_at": d.expires_at,
            "updated_at": at,
        }
        stmt = pg_insert(_CONTENT).values(**values)
        ex = stmt.excluded
        changed = ("title", "url", "audience", "networks", "status", "expires_at", "updated_at")
        set_ = {k: ex[k] for k in changed}
        if isinstance(d, ContentPublished):  # a re-publication is news again
            set_["published_at"] = ex.published_at
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "content_id"], set_=set_, where=_CONTENT.c.updated_at <= ex.updated_at
            )
        )
    elif isinstance(d, ContentExpired | ContentArchived):
        status = "expired" if isinstance(d, ContentExpired) else "archived"
        await session.execute(
            sa.update(_CONTENT)
            .where(_CONTENT.c.tenant_id == env.tenant_id, _CONTENT.c.content_id == d.content_id)
            .values(status=status, updated_at=env.time)
        )


async def stop_if_out(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Opted out of the programme or deactivated in the directory: their queued mail stops at once."""
    row = (
        await session.execute(
            sa.select(_MEMBERS.c.active, _MEMBERS.c.enrolled).where(
                _MEMBERS.c.tenant_id == tenant_id, _MEMBERS.c.employee_id == employee_id
            )
        )
    ).first()
    if row is not None and not (row.active and row.enrolled):
        reason = "deactivated" if not row.active else "opted out of the programme"
        await mail.cancel_pending(session, tenant_id, employee_id=employee_id, reason=reason)
        await chat.cancel_pending(session, tenant_id, employee_id=employee_id, reason=reason)


async def forget_member(session: AsyncSession, tenant_id: str, employee_id: str, at: datetime | None = None) -> None:
    """Erasure: everything about the person goes, pending messages included; a tombstone remains."""
    await TOMBSTONES.add(session, tenant_id, employee_id, at or datetime.now(UTC))
    for table in (
        Member,
        Preference,
        DigestState,
        Message,
        Suppression,
        MemberLanguage,
        QuietHoursRow,
        SharedItem,
        ReportAdmin,
    ):
        await session.execute(
            sa.delete(table).where(col(table.tenant_id) == tenant_id, col(table.employee_id) == employee_id)
        )
    await chat.forget(session, tenant_id, employee_id)
    await erasure.scrub_outbox(session, tenant_id, employee_id)


async def apply_share(session: AsyncSession, env: Envelope[ShareCreated]) -> None:
    """A share: the item is the person's (no expiry notice for it), and their silence ends (the
    nudge counts from their last share). A share before their membership is copied makes a row the
    membership event fills in later."""
    d = env.data
    if await TOMBSTONES.is_erased(session, env.tenant_id, d.employee_id):
        return
    shared = pg_insert(_SHARED).values(
        tenant_id=env.tenant_id, employee_id=d.employee_id, content_id=d.content_id, shared_at=d.created_at
    )
    await session.execute(shared.on_conflict_do_nothing())
    member = pg_insert(_MEMBERS).values(tenant_id=env.tenant_id, employee_id=d.employee_id, last_shared_at=d.created_at)
    await session.execute(
        member.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={"last_shared_at": sa.func.greatest(_MEMBERS.c.last_shared_at, member.excluded.last_shared_at)},
        )
    )


async def apply_wave(session: AsyncSession, env: Envelope[WaveUpdated]) -> None:
    """A roll-out wave, replaced whole; an older update than the copy's is ignored (a deleted wave
    keeps its row, so a late update cannot bring it back)."""
    d = env.data
    stmt = pg_insert(_WAVES).values(
        tenant_id=env.tenant_id,
        wave_id=d.wave_id,
        name=d.name,
        starts_at=d.starts_at,
        teams=list(d.teams),
        employees=list(d.employees),
        deleted=d.deleted,
        updated_at=d.updated_at,
    )
    ex = stmt.excluded
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "wave_id"],
            set_={k: ex[k] for k in ("name", "starts_at", "teams", "employees", "deleted", "updated_at")},
            where=_WAVES.c.updated_at <= ex.updated_at,
        )
    )


async def apply_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Content's events that notifications keeps a copy of (others are ignored)."""
    for env in events:
        d = env.data
        if isinstance(d, MemberUpdated):
            await apply_member(session, env)
            await stop_if_out(session, env.tenant_id, d.employee_id)
            await chat.stop_if_hidden(session, env.tenant_id, d.employee_id)
        elif isinstance(d, MemberProvisioned):
            await apply_provisioned(session, env)
            await stop_if_out(session, env.tenant_id, d.employee_id)
        elif isinstance(d, MemberErased):
            await forget_member(session, env.tenant_id, d.employee_id, d.erased_at)
        elif isinstance(d, ContentPublished | ContentUpdated | ContentExpired | ContentArchived):
            await apply_content(session, env)
        elif isinstance(d, TenantSettingsUpdated):
            await apply_tenant_settings(session, [env])
        elif isinstance(d, WaveUpdated):
            await apply_wave(session, env)
        elif isinstance(d, ShareCreated):
            await apply_share(session, env)
        elif isinstance(d, WeeklyReportComposed):
            await reports.keep_report(session, env)
