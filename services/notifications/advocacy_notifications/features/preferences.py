"""What a person chose to receive, and the tenant's defaults for those who chose nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from advocacy_common.db import table_of
from advocacy_common.errors import Unprocessable
from advocacy_notifications import db
from advocacy_notifications.db import CategoryDefault, Preference
from advocacy_notifications.domain import (
    Category,
    Channel,
    Defaults,
    Frequency,
    frequencies,
    frequency_of,
)
from advocacy_notifications.features import mail

_PREFS = table_of(Preference)
_CATEGORY_DEFAULTS = table_of(CategoryDefault)
_CATEGORIES = {c.value for c in Category}
_CHANNELS = {c.value for c in Channel}

#: Every (category, channel) pair a person has a preference for, in the order they are listed.
PAIRS = [(cat, ch) for cat in Category for ch in Channel]


async def defaults(session: AsyncSession, tenant_id: str) -> Defaults:
    return await db.load_defaults(session, tenant_id)


async def set_defaults(session: AsyncSession, tenant_id: str, d: Defaults) -> Defaults:
    """PUT /defaults: the digest's and the notices' defaults and the quiet hours (the language is
    set apart: PUT /defaults/language); what this returns is what is stored."""
    await db.save_defaults(
        session,
        tenant_id,
        datetime.now(UTC),
        digest_frequency=d.digest_frequency.value,
        digest_hour=d.digest_hour,
        nudge_after_days=d.nudge_after_days,
        expiring_notice_hours=d.expiring_notice_hours,
        quiet_start=d.quiet_hours.start if d.quiet_hours else None,
        quiet_end=d.quiet_hours.end if d.quiet_hours else None,
    )
    return await defaults(session, tenant_id)


async def mine(session: AsyncSession, tenant_id: str, employee_id: str) -> list[dict[str, Any]]:
    """Every pair with the frequency that applies to the person, and whether they chose it."""
    rows = (
        await session.scalars(
            select(Preference).where(Preference.tenant_id == tenant_id, Preference.employee_id == employee_id)
        )
    ).all()
    chosen = {(r.category, r.channel): Frequency(r.frequency) for r in rows}
    d = await defaults(session, tenant_id)
    tenant = await category_defaults(session, tenant_id)
    return [
        {
            "category": cat,
            "channel": ch,
            "frequency": frequency_of(cat, chosen.get((cat.value, ch.value)), tenant.get((cat, ch)), d),
            "chosen": (cat.value, ch.value) in chosen,
        }
        for cat, ch in PAIRS
    ]


def check_frequency(category: Category, frequency: Frequency) -> None:
    """422 for a frequency the category does not take (a daily badge notice, a digest ``on``)."""
    allowed = frequencies(category)
    if frequency not in allowed:
        raise Unprocessable.field("frequency", f"{category.value} takes one of {', '.join(f.value for f in allowed)}")


async def category_defaults(session: AsyncSession, tenant_id: str) -> dict[tuple[Category, Channel], Frequency]:
    """The tenant's defaults per category and channel (a pair without one: ``on``)."""
    rows = await session.execute(
        sa.select(_CATEGORY_DEFAULTS.c.category, _CATEGORY_DEFAULTS.c.channel, _CATEGORY_DEFAULTS.c.frequency).where(
            _CATEGORY_DEFAULTS.c.tenant_id == tenant_id
        )
    )
    out: dict[tuple[Category, Channel], Frequency] = {}
    for r in rows:
        if r.category in _CATEGORIES and r.channel in _CHANNELS:  # one a later release dropped: ignored
            out[(Category(r.category), Channel(r.channel))] = Frequency(r.frequency)
    return out


async def set_category_default(
    session: AsyncSession, tenant_id: str, category: Category, channel: Channel, frequency: Frequency
) -> dict[str, Any]:
    """The tenant's default for one category on one channel, for people who chose nothing. The
    digest's is its frequency in :func:`set_defaults` (one way to set it): 422 here."""
    if category is Category.digest:
        raise Unprocessable.field("category", "the digest's default is digest_frequency in PUT /defaults")
    check_frequency(category, frequency)
    stmt = pg_insert(_CATEGORY_DEFAULTS).values(
        tenant_id=tenant_id,
        category=category.value,
        channel=channel.value,
        frequency=frequency.value,
        updated_at=datetime.now(UTC),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "category", "channel"],
            set_={"frequency": stmt.excluded.frequency, "updated_at": stmt.excluded.updated_at},
        )
    )
    return {"category": category, "channel": channel, "frequency": frequency, "chosen": True}


async def choose(
    session: AsyncSession, tenant_id: str, employee_id: str, category: Category, channel: Channel, frequency: Frequency
) -> dict[str, Any]:
    check_frequency(category, frequency)
    stmt = pg_insert(_PREFS).values(
        tenant_id=tenant_id,
        employee_id=employee_id,
        category=category.value,
        channel=channel.value,
        frequency=frequency.value,
        updated_at=datetime.now(UTC),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id", "category", "channel"],
            set_={"frequency": stmt.excluded.frequency, "updated_at": stmt.excluded.updated_at},
        )
    )
    if frequency is Frequency.off:  # what is already queued stops too
        await mail.cancel_pending(
            session, tenant_id, employee_id=employee_id, category=category.value, channel=channel.value, reason="off"
        )
    return {"category": category, "channel": channel, "frequency": frequency, "chosen": True}


async def chosen_frequencies(
    session: AsyncSession, tenant_id: str, category: Category, channel: Channel
) -> dict[str, Frequency]:
    """Who in the tenant chose a frequency for this pair (everyone else: the default)."""
    rows = await session.execute(
        sa.select(_PREFS.c.employee_id, _PREFS.c.frequency).where(
            _PREFS.c.tenant_id == tenant_id, _PREFS.c.category == category.value, _PREFS.c.channel == channel.value
        )
    )
    return {r.employee_id: Frequency(r.frequency) for r in rows}
