"""Delivering queued mail: each pending message handed to the SMTP relay, then recorded as sent.

Each message is its own transaction: its row is locked (``FOR UPDATE SKIP LOCKED``, so two workers
never hand over the same message), handed to the relay, marked ``sent`` and committed. A message
recorded as sent is never handed over again.

The one window: a process killed after the relay accepted a message and before the commit that
records it (failpoint ``notifications.mail.after_send`` sits in it) leaves the row pending, and the
next pass sends it again; killed before the hand-over (``notifications.mail.before_send``), nothing
was sent and the next pass sends it once. Receivers offer no idempotency, so this is the rule: at
most that one message per killed process (one per SMTP session with ``smtp_connections`` above 1)
is sent twice, and it carries the same ``Message-ID`` both times (mail clients that de-duplicate by
it show one). Nothing is ever lost: a message leaves ``pending`` only once sent, or refused for good
(a 5xx refusal of the recipient: ``failed``).

An unreachable relay delays mail and loses none: the pass ends, the messages stay pending, and the
next pass tries again (:func:`advocacy_common.supervision.backoff`-style pauses in the loop).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from advocacy_common import failpoints
from advocacy_notifications import domain
from advocacy_notifications.adapters.smtp import Outgoing, Refused, Relay, RelayUnavailable
from advocacy_notifications.db import Message, Suppression
from advocacy_notifications.domain import MessageState
from advocacy_notifications.features import quiet_hours
from advocacy_notifications.features.quiet_hours import TenantQuiet
from advocacy_notifications.settings import NotificationsSettings

log = logging.getLogger("advocacy.notifications.mail")

# A failed attempt waits RETRY_BASE * 2^(attempts - 1), at most domain.RETRY_CAP.
RETRY_BASE = timedelta(seconds=30)
# A session lists this many due messages at a time (in the pending index's order), then takes each
# by its id in its own transaction. Taking "the oldest due one" afresh per message, sorted by
# (next_attempt_at, id), re-read every row of the pass (a digest pass queues them all at one instant)
# and the entries of those sent before it: a pass of n messages cost n^2. The sender alone against
# PostgreSQL, 2,000 messages: 61 messages/s before, 314-376 after (bench/notifications.py).
CANDIDATES = 100


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(col(Message.state) == MessageState.pending.value, col(Message.next_attempt_at) <= now)


async def pending_count(session: AsyncSession, now: datetime) -> int:
    return int(await session.scalar(sa.select(sa.func.count()).select_from(Message).where(_due(now))) or 0)


async def deliver_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: NotificationsSettings,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Hand the due pending messages to the relay, at most ``settings.send_batch``; returns how many
    were sent. Raises :class:`RelayUnavailable` when the relay cannot be reached (nothing is lost)."""
    async with sessionmaker() as session:
        if await pending_count(session, clock()) == 0:
            return 0
    # settings.smtp_connections sessions side by side (1 unless configured), each taking one message
    # at a time: a message is four SMTP round trips, and a session spends much of its time waiting
    # for the relay's replies (bench/notifications.py). Each session's message in flight is in the
    # window above, so a kill may re-send one message per session.
    # sends reserved (at most send_batch a pass) and tries (a listed message another worker holds, or
    # that stopped being due, costs a try: at most twice send_batch, so a pass always ends)
    reserved = [0]
    tries = [2 * settings.send_batch]
    sent = [0]
    # the sessions share one list of due ids (listed CANDIDATES at a time) and the ids in their hands,
    # so no two of this pass's sessions try the same message
    listed: list[str] = []
    in_hand: set[str] = set()
    listing = asyncio.Lock()

    async def next_id() -> str | None:
        async with listing:
            room = settings.send_batch - reserved[0]
            if room <= 0 or tries[0] <= 0:
                return None
            if not listed:
                ids = await _due_ids(sessionmaker, clock(), min(CANDIDATES, room) + len(in_hand))
                listed.extend(i for i in ids if i not in in_hand)
            if not listed:
                return None
            tries[0] -= 1
            reserved[0] += 1
            message_id = listed.pop(0)
            in_hand.add(message_id)
            return message_id

    async def session_loop() -> None:
        async with Relay(settings) as relay:
            while (message_id := await next_id()) is not None:
                try:
                    outcome = await _deliver_one(sessionmaker, relay, settings, clock(), message_id)
                finally:
                    in_hand.discard(message_id)
                if outcome is None:  # another worker has it, or it is not due any more
                    reserved[0] -= 1
                    continue
                if isinstance(outcome, RelayUnavailable):
                    raise outcome
                sent[0] += outcome

    results = await asyncio.gather(
        *(session_loop() for _ in range(min(settings.smtp_connections, settings.send_batch))), return_exceptions=True
    )
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return sent[0]


async def _due_ids(sessionmaker: async_sessionmaker[AsyncSession], now: datetime, limit: int) -> list[str]:
    """The next due messages' ids, oldest first, unlocked: each is then taken in its own transaction."""
    async with sessionmaker() as session:
        query = (
            sa.select(col(Message.id))
            .where(_due(now))
            .order_by(col(Message.next_attempt_at))  # the pending index's order: no sort of the ties
            .limit(limit)
        )
        return list((await session.scalars(query)).all())


async def _deliver_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    relay: Relay,
    settings: NotificationsSettings,
    now: datetime,
    message_id: str,
) -> int | RelayUnavailable | None:
    """One message in its own transaction: 1 sent, 0 refused, None when it is not due any more or
    another session holds it."""
    async with sessionmaker() as session, session.begin():
        row = await session.scalar(
            select(Message).where(col(Message.id) == message_id, _due(now)).with_for_update(skip_locked=True)
        )
        if row is None:
            return None
        failpoints.hit("notifications.mail.before_send")
        try:
            await relay.send(
                Outgoing(
                    message_id=row.id,
                    sender=settings.mail_from,
                    recipient=row.recipient,
                    subject=row.subject,
                    text=row.body_text,
                    html=row.body_html,
                    headers=row.headers,
                )
            )
        except Refused as e:
            _failed(row, str(e), now, permanent=e.permanent)
            if e.permanent:
                await suppress(session, row.tenant_id, row.employee_id, row.recipient, str(e), now)
            log.warning(
                "message refused", extra={"message_id": row.id, "permanent": e.permanent, "error": str(e)[:300]}
            )
            return 0
        except RelayUnavailable as e:
            _failed(row, str(e), now, permanent=False)
            return e
        failpoints.hit("notifications.mail.after_send")
        row.state = MessageState.sent.value
        row.sent_at = now
        row.attempts += 1
        row.last_error = None
    return 1


async def cancel_pending(
    session: AsyncSession,
    tenant_id: str,
    *,
    employee_id: str | None = None,
    recipient: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    reason: str,
) -> int:
    """Stop the person's (or the address's) pending messages at once: pending -> cancelled."""
    where = [col(Message.tenant_id) == tenant_id, col(Message.state) == MessageState.pending.value]
    for column, value in (
        (Message.employee_id, employee_id),
        (Message.recipient, recipient),
        (Message.category, category),
        (Message.channel, channel),
    ):
        if value is not None:
            where.append(col(column) == value)
    res = await session.execute(
        sa.update(Message).where(*where).values(state=MessageState.cancelled.value, last_error=reason[:1000])
    )
    return int(getattr(res, "rowcount", 0) or 0)


async def suppress(
    session: AsyncSession, tenant_id: str, employee_id: str, email: str, reason: str, now: datetime
) -> None:
    """A hard bounce: nothing more is written to the address (its other pending mail is cancelled)."""
    stmt = pg_insert(Suppression).values(
        tenant_id=tenant_id, email=email, employee_id=employee_id, reason=reason[:1000], created_at=now
    )
    await session.execute(stmt.on_conflict_do_nothing())
    await cancel_pending(session, tenant_id, recipient=email, reason=f"address suppressed: {reason}")


async def suppressed(session: AsyncSession, tenant_id: str) -> set[str]:
    rows = await session.scalars(sa.select(col(Suppression.email)).where(col(Suppression.tenant_id) == tenant_id))
    return set(rows.all())


def _failed(row: Message, error: str, now: datetime, *, permanent: bool) -> None:
    row.attempts += 1
    row.last_error = error[:1000]
    if permanent:
        row.state = MessageState.failed.value
    else:
        row.next_attempt_at = now + domain.retry_delay(row.attempts, RETRY_BASE)


async def queue(
    session: AsyncSession,
    *,
    tenant_id: str,
    employee_id: str,
    dedupe_key: str,
    category: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    headers: dict[str, str],
    now: datetime,
    quiet: TenantQuiet | None = None,
    channel: str = domain.Channel.email.value,
) -> bool:
    """Queue one message, once per ``dedupe_key`` (False: it was already composed). Every message
    queued passes here: its first delivery is held past the person's quiet hours
    (:func:`domain.delivery_time`; ``quiet``: the tenant's, loaded once for a pass of many)."""
    if quiet is None:
        quiet = await quiet_hours.load(session, tenant_id, [employee_id])
    stmt = pg_insert(Message).values(
        id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        employee_id=employee_id,
        dedupe_key=dedupe_key,
        category=category,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body_text=text,
        body_html=html,
        headers=headers,
        state=MessageState.pending.value,
        attempts=0,
        created_at=now,
        next_attempt_at=quiet.delivery_time(employee_id, now),
    )
    res = await session.execute(stmt.on_conflict_do_nothing(constraint="uq_messages_dedupe").returning(col(Message.id)))
    return res.first() is not None


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 and RFC 8058: a mail client's unsubscribe button POSTs to the link, no login."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
