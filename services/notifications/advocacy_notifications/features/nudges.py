"""The nudge: a person who has not shared in N days (the tenant's ``nudge_after_days``, 30 unless
set, 0 turns it off) hears about it, once per period of silence (:func:`domain.nudge_period`).

Silence counts from the person's last share (sharing's ``share.created``, copied), or from when
notifications first knew them. Never nudged: people deactivated in the directory, opted out of the
programme, erased (no copy left), without an address, whose address bounced, or for whom the
``nudge`` category is off (:func:`wants`: their choice, else the tenant's default; the per-event
notices and the expiry notice ask the same two questions, :func:`reachable` and :func:`wants`).
A pass (:func:`compose_due`, the clock passed in) looks at most at ``limit``
people; each nudged person's ``nudged_for`` records the period, so the next pass goes on with the
others, and the message's key (:func:`domain.nudge_key`) makes a second pass compose nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import eligibility
from advocacy_common.db import table_of
from advocacy_notifications import domain
from advocacy_notifications.adapters import templates
from advocacy_notifications.adapters.links import LINK_KEY
from advocacy_notifications.db import CategoryDefault, ContentCopy, Member, Preference, Suppression
from advocacy_notifications.domain import Category, Channel, Frequency
from advocacy_notifications.features import digests, mail, preferences, quiet_hours, wording

_MEMBERS = table_of(Member)
# A nudge suggests at most this many items from the person's board (the newest).
SUGGESTED_ITEMS = 3
# The newest items of a tenant looked at for suggestions (enough that some are on most boards).
SUGGESTION_POOL = 50


def wants(category: Category, channel: Channel = Channel.email) -> sa.ColumnElement[bool]:
    """The category is on for the person (a :class:`Member` row) on ``channel``: their choice, else
    the tenant's default, else on (:func:`domain.frequency_of`, in SQL)."""
    chosen = (
        sa.select(col(Preference.frequency))
        .where(
            col(Preference.tenant_id) == col(Member.tenant_id),
            col(Preference.employee_id) == col(Member.employee_id),
            col(Preference.category) == category.value,
            col(Preference.channel) == channel.value,
        )
        .scalar_subquery()
    )
    tenant = (
        sa.select(col(CategoryDefault.frequency))
        .where(
            col(CategoryDefault.tenant_id) == col(Member.tenant_id),
            col(CategoryDefault.category) == category.value,
            col(CategoryDefault.channel) == channel.value,
        )
        .scalar_subquery()
    )
    return sa.func.coalesce(chosen, tenant, Frequency.on.value) != Frequency.off.value


def reachable() -> list[sa.ColumnElement[bool]]:
    """People we may write to at all: an address that did not bounce, active, in the programme."""
    bounced = sa.exists().where(
        col(Suppression.tenant_id) == col(Member.tenant_id), col(Suppression.email) == col(Member.email)
    )
    return [col(Member.email).is_not(None), col(Member.active).is_(True), col(Member.enrolled).is_(True), ~bounced]


async def compose_due(session: AsyncSession, now: datetime, *, base_url: str, limit: int) -> int:
    """Queue the nudges due at ``now``, looking at most at ``limit`` people. Returns how many."""
    tenants = (await session.scalars(sa.select(col(Member.tenant_id)).where(*reachable()).distinct())).all()
    queued = 0
    budget = limit
    for tenant in tenants:
        if budget <= 0:
            break
        n, looked = await _compose_tenant(session, tenant, now, base_url=base_url, limit=budget)
        queued += n
        budget -= looked
    return queued


async def _compose_tenant(
    session: AsyncSession, tenant: str, now: datetime, *, base_url: str, limit: int
) -> tuple[int, int]:
    days = (await preferences.defaults(session, tenant)).nudge_after_days
    if days <= 0:
        return 0, 0
    length = timedelta(days=days)
    silent = sa.func.coalesce(col(Member.last_shared_at), col(Member.first_seen_at))
    # silent for a whole period, and not nudged for the period they are in (nudged_for is the start
    # of the last period nudged for: a later period has begun once it is a period old)
    people = (
        await session.scalars(
            select(Member)
            .where(
                Member.tenant_id == tenant,
                *reachable(),
                wants(Category.nudge),
                silent <= now - length,
                sa.or_(
                    col(Member.nudged_for).is_(None),
                    col(Member.nudged_for) <= now - length,
                    col(Member.nudged_for) < silent,
                ),
            )
            .order_by(col(Member.employee_id))
            .limit(limit)
        )
    ).all()
    if not people:
        return 0, 0
    pool = (
        await session.scalars(
            select(ContentCopy)
            .where(ContentCopy.tenant_id == tenant, ContentCopy.status == eligibility.PUBLISHED)
            .order_by(col(ContentCopy.published_at).desc(), col(ContentCopy.content_id))
            .limit(SUGGESTION_POOL)
        )
    ).all()
    waves = await digests.wave_views(session, tenant)
    quiet = await quiet_hours.load(session, tenant)
    words = await wording.load(session, tenant, [m.employee_id for m in people])
    key = await LINK_KEY.get(session)
    queued = 0
    for m in people:
        since = m.last_shared_at or m.first_seen_at
        assert since is not None and m.email is not None
        period = domain.nudge_period(now, since, days)
        if period is None:  # the database's clock and ours disagree by a hair: next pass
            continue
        items = [c for c in pool if digests.on_board(c, m, waves, now)][:SUGGESTED_ITEMS]
        unsubscribe = digests.unsubscribe_url(base_url, key, tenant, m.employee_id, Category.nudge)
        context: dict[str, Any] = {
            "name": m.name,
            "days": days,
            "never": m.last_shared_at is None,
            "items": [{"title": c.title, "url": c.url} for c in items],
            "unsubscribe_url": unsubscribe,
            "time_zone": quiet.zone,
        }
        # the person's language (else the tenant's), and the tenant's own wording of it if it has one
        language = words.language(m.employee_id)
        parts = templates.render("nudge", context, language, words.override("nudge", language))
        if await mail.queue(
            session,
            tenant_id=tenant,
            employee_id=m.employee_id,
            dedupe_key=domain.nudge_key(m.employee_id, period),
            category=Category.nudge.value,
            recipient=m.email,
            subject=parts.subject,
            text=parts.text,
            html=parts.html,
            headers=mail.unsubscribe_headers(unsubscribe),
            now=now,
            quiet=quiet,
        ):
            queued += 1
        await session.execute(
            sa.update(_MEMBERS)
            .where(_MEMBERS.c.tenant_id == tenant, _MEMBERS.c.employee_id == m.employee_id)
            .values(nudged_for=period)
        )
    return queued, len(people)
