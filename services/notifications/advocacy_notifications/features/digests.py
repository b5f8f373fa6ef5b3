"""The digest: new content targeted at a person, daily or weekly as they chose, composed at a local
hour in the tenant's time zone, and not at all when there is nothing new.

A scheduler pass (:func:`compose_due`, the clock passed in) finds, per tenant, the people whose
digest slot has come (:func:`domain.latest_slot`), lists the items published in their window that
are on their board (:func:`advocacy_common.eligibility.refusal`, the board's own predicate), and
queues one message per person and slot. The slot is recorded either way, so a person is looked at
once per slot; the message's unique key (:func:`domain.digest_key`) makes a second pass for the
same slot compose nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import eligibility
from advocacy_common.db import table_of
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_notifications import domain
from advocacy_notifications.adapters import links, templates
from advocacy_notifications.adapters.links import LINK_KEY
from advocacy_notifications.db import ContentCopy, DigestState, Member, WaveCopy
from advocacy_notifications.domain import Category, Channel, Frequency
from advocacy_notifications.features import mail, preferences, quiet_hours, wording
from advocacy_notifications.features.quiet_hours import TenantQuiet
from advocacy_notifications.features.share_buttons import ShareButtons

_STATES = table_of(DigestState)


def unsubscribe_url(base_url: str, key: bytes, tenant_id: str, employee_id: str, category: Category) -> str:
    token = links.sign(key, {"t": tenant_id, "e": employee_id, "c": category.value, "ch": Channel.email.value})
    return f"{base_url.rstrip('/')}/v1/notifications/unsubscribe?token={quote(token)}"


async def compose_due(
    session: AsyncSession, now: datetime, *, base_url: str, limit: int, buttons: ShareButtons | None = None
) -> int:
    """Queue the digests due at ``now``; at most ``limit`` people looked at. Returns how many
    messages were queued. With ``buttons``, each item carries its one-click share buttons."""
    tenants = (
        await session.scalars(
            sa.select(col(Member.tenant_id))
            .where(col(Member.email).is_not(None), col(Member.active), col(Member.enrolled))
            .distinct()
        )
    ).all()
    queued = 0
    budget = limit
    for tenant in tenants:
        if budget <= 0:
            break
        n, looked = await _compose_tenant(session, tenant, now, base_url=base_url, limit=budget, buttons=buttons)
        queued += n
        budget -= looked
    return queued


async def _compose_tenant(
    session: AsyncSession, tenant: str, now: datetime, *, base_url: str, limit: int, buttons: ShareButtons | None
) -> tuple[int, int]:
    settings = await load_tenant_settings(session, tenant)
    defaults = await preferences.defaults(session, tenant)
    chosen = await preferences.chosen_frequencies(session, tenant, Category.digest, Channel.email)
    slots = {
        f: domain.latest_slot(
            now, f, zone=settings.time_zone, hour=defaults.digest_hour, week_starts_on=settings.week_starts_on
        )
        for f in (Frequency.daily, Frequency.weekly)
    }
    last = sa.select(_STATES.c.employee_id, _STATES.c.last_slot).where(_STATES.c.tenant_id == tenant)
    states: dict[str, datetime] = {r.employee_id: r.last_slot for r in (await session.execute(last)).all()}
    members = (
        await session.scalars(
            select(Member)
            .where(Member.tenant_id == tenant, col(Member.email).is_not(None), col(Member.active), col(Member.enrolled))
            .order_by(col(Member.employee_id))
        )
    ).all()
    bounced = await mail.suppressed(session, tenant)
    due: list[tuple[Member, Frequency, datetime]] = []
    for m in members:
        if m.email in bounced:
            continue
        f = domain.effective_frequency(chosen.get(m.employee_id), defaults)
        slot = slots.get(f)
        if slot is not None and domain.is_due(slot, states.get(m.employee_id)):
            due.append((m, f, slot))
        if len(due) >= limit:
            break
    if not due:
        return 0, 0
    earliest = min(slot for _, _, slot in due) - domain.MAX_LOOKBACK
    content = (
        await session.scalars(
            select(ContentCopy)
            .where(
                ContentCopy.tenant_id == tenant,
                ContentCopy.status == eligibility.PUBLISHED,
                col(ContentCopy.published_at) >= earliest,
                col(ContentCopy.published_at) < now,
            )
            .order_by(col(ContentCopy.published_at).desc(), col(ContentCopy.content_id))
        )
    ).all()
    key = await LINK_KEY.get(session)
    waves = await wave_views(session, tenant)
    quiet = await quiet_hours.load(session, tenant)
    words = await wording.load(session, tenant, [m.employee_id for m, _, _ in due])
    queued = 0
    for m, f, slot in due:
        since, until = domain.digest_window(slot, f, states.get(m.employee_id))
        items = [c for c in content if since <= c.published_at < until and on_board(c, m, waves, now)]
        items = items[: domain.MAX_DIGEST_ITEMS]
        if items and m.email is not None:
            queued += await _queue(
                session,
                m,
                f,
                slot,
                items,
                base_url=base_url,
                key=key,
                now=now,
                quiet=quiet,
                buttons=buttons,
                words=words,
                zone=settings.time_zone,
            )
        stmt = pg_insert(_STATES).values(tenant_id=tenant, employee_id=m.employee_id, last_slot=slot)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"],
                set_={"last_slot": stmt.excluded.last_slot},
                where=_STATES.c.last_slot < stmt.excluded.last_slot,
            )
        )
    return queued, len(due)


async def wave_views(session: AsyncSession, tenant_id: str) -> list[eligibility.WaveView]:
    """The tenant's roll-out waves (content's ``wave.updated``), as the board gates with them."""
    rows = (
        await session.scalars(select(WaveCopy).where(WaveCopy.tenant_id == tenant_id, col(WaveCopy.deleted).is_(False)))
    ).all()
    return [
        eligibility.WaveView(
            id=w.wave_id,
            name=w.name,
            starts_at=w.starts_at,
            teams=frozenset(w.teams or ()),
            employees=frozenset(w.employees or ()),
        )
        for w in rows
    ]


def on_board(c: ContentCopy, m: Member, waves: Sequence[eligibility.WaveView], now: datetime) -> bool:
    """Whether the item is on the person's board at ``now``: content's own predicate, with the
    tenant's waves, and the team the board judges by (the directory's, else membership's)."""
    return (
        eligibility.refusal(
            status=c.status,
            expires_at=c.expires_at,
            audience=c.audience or {},
            employee_id=m.employee_id,
            viewer=eligibility.Viewer(
                team=eligibility.team_of(m.directory_team, m.member_team),
                programme_roles=frozenset(m.programme_roles or ()),
                department=m.department,
                location=m.location,
            ),
            enrolled=m.enrolled,
            waves=waves,
            now=now,
            active=m.active,
        )
        is None
    )


async def _queue(
    session: AsyncSession,
    m: Member,
    f: Frequency,
    slot: datetime,
    items: list[ContentCopy],
    *,
    base_url: str,
    key: bytes,
    now: datetime,
    quiet: TenantQuiet,
    buttons: ShareButtons | None = None,
    words: wording.Wording | None = None,
    zone: str = "UTC",
) -> int:
    assert m.email is not None
    unsubscribe = unsubscribe_url(base_url, key, m.tenant_id, m.employee_id, Category.digest)
    # the person's language (else the tenant's): the message's, and the share pages' behind its buttons
    language = words.language(m.employee_id) if words else templates.DEFAULT_LOCALE
    context: dict[str, Any] = {
        "name": m.name,
        "frequency": f.value,
        "items": [
            {
                "title": c.title,
                "url": c.url,
                "published_at": c.published_at,
                "share": buttons.for_item(m, c, now, language) if buttons else [],
            }
            for c in items
        ],
        "unsubscribe_url": unsubscribe,
        "time_zone": zone,
    }
    # the tenant's own wording of it, if it has one
    parts = templates.render("digest", context, language, words.override("digest", language) if words else None)
    queued = await mail.queue(
        session,
        tenant_id=m.tenant_id,
        employee_id=m.employee_id,
        dedupe_key=domain.digest_key(m.employee_id, slot),
        category=Category.digest.value,
        recipient=m.email,
        subject=parts.subject,
        text=parts.text,
        html=parts.html,
        headers=mail.unsubscribe_headers(unsubscribe),
        now=now,
        quiet=quiet,
    )
    return 1 if queued else 0
