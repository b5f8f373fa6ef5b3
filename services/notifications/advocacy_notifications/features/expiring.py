"""Content about to expire: people who have the item on their board and have not shared it hear
about it a tenant-set time before it expires (``expiring_notice_hours``, 24 unless set), once per
person and item (:func:`domain.expiring_key`).

"On their board" is content's own predicate (:func:`digests.on_board`: audience, waves, the
directory's flag); "not shared" is sharing's ``share.created``, copied. A pass (:func:`compose_due`,
the clock passed in) looks at most at ``limit`` people: it pages through each expiring item's
people in employee-id order and records where it stopped (``expiry_scans``), so the next pass goes
on from there and an item with 100,000 people takes several bounded passes, not one long one.

Late wave openers: a person whose roll-out wave opens after the sweep looked at them (the item was
not on their board then) is told once it is. A finished sweep is made again, from the first
person, when a wave of the tenant opened after the sweep began (``started_at``) and before now;
people already told (their key taken) are skipped in the query, so a new sweep costs a page query
per ``limit`` people and renders only for the newly eligible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import eligibility
from advocacy_common.db import table_of
from advocacy_notifications import domain
from advocacy_notifications.adapters import templates
from advocacy_notifications.adapters.links import LINK_KEY
from advocacy_notifications.db import ContentCopy, ExpiryScan, Member, Message, SharedItem, TenantDefaults, WaveCopy
from advocacy_notifications.domain import Category
from advocacy_notifications.features import digests, mail, nudges, quiet_hours, wording
from advocacy_notifications.features.quiet_hours import TenantQuiet

_SCANS = table_of(ExpiryScan)
# At most this many expiring items are looked at per pass (the soonest first).
ITEMS_PER_PASS = 100


async def compose_due(session: AsyncSession, now: datetime, *, base_url: str, limit: int) -> int:
    """Queue the expiry notices due at ``now``, looking at most at ``limit`` people. Returns how many."""
    hours = sa.func.coalesce(col(TenantDefaults.expiring_notice_hours), domain.DEFAULT_EXPIRING_NOTICE_HOURS)
    # a wave that opened after the sweep began: someone may have the item on their board now
    opened_since = sa.exists().where(
        col(WaveCopy.tenant_id) == col(ExpiryScan.tenant_id),
        col(WaveCopy.starts_at) > col(ExpiryScan.started_at),
        col(WaveCopy.starts_at) <= now,
        ~col(WaveCopy.deleted),
    )
    finished = sa.exists().where(
        col(ExpiryScan.tenant_id) == col(ContentCopy.tenant_id),
        col(ExpiryScan.content_id) == col(ContentCopy.content_id),
        col(ExpiryScan.expires_at) == col(ContentCopy.expires_at),
        col(ExpiryScan.finished),
        ~opened_since,
    )
    items = (
        await session.scalars(
            select(ContentCopy)
            .outerjoin(TenantDefaults, col(TenantDefaults.tenant_id) == col(ContentCopy.tenant_id))
            .where(
                ContentCopy.status == eligibility.PUBLISHED,
                col(ContentCopy.expires_at) > now,
                col(ContentCopy.expires_at) <= now + sa.func.make_interval(0, 0, 0, 0, hours),
                ~finished,
            )
            .order_by(col(ContentCopy.expires_at), col(ContentCopy.tenant_id), col(ContentCopy.content_id))
            .limit(ITEMS_PER_PASS)
        )
    ).all()
    key = await LINK_KEY.get(session) if items else b""
    tenant_state: dict[str, tuple[list[eligibility.WaveView], TenantQuiet]] = {}
    queued = 0
    budget = limit
    for item in items:
        if budget <= 0:
            break
        if item.tenant_id not in tenant_state:
            tenant_state[item.tenant_id] = (
                await digests.wave_views(session, item.tenant_id),
                await quiet_hours.load(session, item.tenant_id),
            )
        waves, quiet = tenant_state[item.tenant_id]
        n, looked = await _compose_item(session, item, now, waves, quiet, base_url=base_url, key=key, limit=budget)
        queued += n
        budget -= looked
    return queued


async def _compose_item(
    session: AsyncSession,
    item: ContentCopy,
    now: datetime,
    waves: list[eligibility.WaveView],
    quiet: TenantQuiet,
    *,
    base_url: str,
    key: bytes,
    limit: int,
) -> tuple[int, int]:
    assert item.expires_at is not None
    scan = await session.get(ExpiryScan, (item.tenant_id, item.content_id))
    # a new expiry (the item was extended), or a finished sweep come back (a wave opened since it
    # began), starts over; the keys keep it to one notice per person
    going_on = scan is not None and scan.expires_at == item.expires_at and not scan.finished
    after = scan.after if going_on and scan is not None else None
    started_at = scan.started_at if going_on and scan is not None else now
    shared = sa.exists().where(
        col(SharedItem.tenant_id) == col(Member.tenant_id),
        col(SharedItem.employee_id) == col(Member.employee_id),
        col(SharedItem.content_id) == item.content_id,
    )
    # told already (domain.expiring_key, by the unique index): not looked at again
    told = sa.exists().where(
        col(Message.tenant_id) == col(Member.tenant_id),
        col(Message.dedupe_key) == sa.func.concat("expiring:", col(Member.employee_id), f":{item.content_id}"),
    )
    q = select(Member).where(
        Member.tenant_id == item.tenant_id, *nudges.reachable(), nudges.wants(Category.expiring), ~shared, ~told
    )
    if after is not None:
        q = q.where(col(Member.employee_id) > after)
    people = (await session.scalars(q.order_by(col(Member.employee_id)).limit(limit))).all()
    words = await wording.load(session, item.tenant_id, [m.employee_id for m in people])
    queued = 0
    for m in people:
        if m.email is None or not digests.on_board(item, m, waves, now):
            continue
        unsubscribe = digests.unsubscribe_url(base_url, key, item.tenant_id, m.employee_id, Category.expiring)
        context: dict[str, Any] = {
            "name": m.name,
            "item": {"title": item.title, "url": item.url},
            "expires_at": item.expires_at,
            "unsubscribe_url": unsubscribe,
            "time_zone": quiet.zone,
        }
        language = words.language(m.employee_id)
        parts = templates.render("expiring", context, language, words.override("expiring", language))
        if await mail.queue(
            session,
            tenant_id=item.tenant_id,
            employee_id=m.employee_id,
            dedupe_key=domain.expiring_key(m.employee_id, item.content_id),
            category=Category.expiring.value,
            recipient=m.email,
            subject=parts.subject,
            text=parts.text,
            html=parts.html,
            headers=mail.unsubscribe_headers(unsubscribe),
            now=now,
            quiet=quiet,
        ):
            queued += 1
    stmt = pg_insert(_SCANS).values(
        tenant_id=item.tenant_id,
        content_id=item.content_id,
        expires_at=item.expires_at,
        after=people[-1].employee_id if people else after,
        finished=len(people) < limit,
        started_at=started_at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "content_id"],
            set_={k: stmt.excluded[k] for k in ("expires_at", "after", "finished", "started_at")},
        )
    )
    return queued, len(people)
