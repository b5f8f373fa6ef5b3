"""Delivering queued mail: each pending message handed to the SMTP relay, then recorded as sent.

A session claims a group of due messages in one transaction (one ``SELECT ... FOR UPDATE SKIP
LOCKED``, so two sessions or two workers never hold the same message), hands each to the relay,
records those sent in one ``UPDATE`` and commits. A message recorded as sent is never handed over
again. ``send_group`` sets the group's size: 1 (the default) is one message per transaction.

The one window: a process killed after the relay accepted a message and before the commit that
records it (failpoint ``notifications.mail.after_send`` sits in it) leaves the row pending, and the
next pass sends it again; killed before the hand-over (``notifications.mail.before_send``), nothing
was sent and the next pass sends it once. Receivers offer no idempotency, so this is the rule: at
most that one message per killed process is sent twice (with ``smtp_connections`` or
``send_group`` above 1: what each session's group had handed over, at most
``smtp_connections * send_group`` messages), and it carries the same ``Message-ID`` both times (mail
clients that de-duplicate by it show one). Nothing is ever lost: a message leaves ``pending`` only
once sent, or refused for good (a 5xx refusal of the recipient: ``failed``).

An unreachable relay delays mail and loses none: the pass ends, the messages stay pending, and the
next pass tries again (:func:`advocacy_common.supervision.backoff`-style pauses in the loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

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


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(col(Message.state) == MessageState.pending.value, col(Message.next_attempt_at) <= now)


async def any_due(session: AsyncSession, now: datetime) -> bool:
    """Whether a message is due (one entry of the pending index read, not a count of them all)."""
    return await session.scalar(sa.select(sa.exists().where(_due(now)))) is True


async def deliver_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: NotificationsSettings,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Hand the due pending messages to the relay, at most ``settings.send_batch``; returns how many
    were sent. Raises :class:`RelayUnavailable` when the relay cannot be reached (nothing is lost)."""
    async with sessionmaker() as session:
        if not await any_due(session, clock()):
            return 0
    # settings.smtp_connections sessions side by side (1 unless configured): a message is four SMTP
    # round trips, and a session spends much of its time waiting for the relay's replies
    # (bench/notifications.py). Each takes groups of send_group messages; SKIP LOCKED keeps two
    # sessions (or two workers) off the same message. room: what is left of send_batch this pass.
    room = [settings.send_batch]
    sent = [0]
    engine = session.bind  # the sessions' engine: each SMTP session holds one of its connections
    assert isinstance(engine, AsyncEngine)

    async def session_loop() -> None:
        async with Relay(settings) as relay, engine.connect() as conn:
            db = _Claims(await _driver(conn))
            while room[0] > 0:
                take = min(settings.send_group, room[0])
                room[0] -= take
                outcome = await _deliver_group(db, relay, settings, clock(), take)
                if outcome.refused or outcome.unavailable is not None:
                    async with sessionmaker() as s, s.begin():
                        await _record_failures(s, outcome, clock())
                room[0] += take - outcome.claimed
                sent[0] += outcome.sent
                if outcome.unavailable is not None:
                    raise outcome.unavailable[1]
                if outcome.claimed < take:
                    return  # nothing more is due (or the rest is in other sessions' hands)

    results = await asyncio.gather(
        *(session_loop() for _ in range(min(settings.smtp_connections, settings.send_batch))), return_exceptions=True
    )
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return sent[0]


async def _driver(conn: AsyncConnection) -> asyncpg.Connection[asyncpg.Record]:
    """The session's asyncpg connection itself: the claim and the record are the sender's only
    statements per message, and through SQLAlchemy (a statement built, compiled from its cache and
    its result wrapped, a session's transaction begun and committed) they cost 2 ms of CPU per
    message, the most of it; asyncpg's prepared statements take a tenth. Nothing else runs on
    this connection, so SQLAlchemy's idea of its transaction is never out of step."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    return driver


# The claim: due messages in the pending index's order (no sort), locked so that no other session
# or worker takes them, skipping those another holds. headers as text: json.loads below.
_CLAIM = """
SELECT id, tenant_id, employee_id, recipient, subject, body_text, body_html, headers::text AS headers
FROM messages WHERE state = 'pending' AND next_attempt_at <= $1
ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
_RECORD_SENT = """
UPDATE messages SET state = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1::text[])
"""


@dataclass(slots=True)
class _Claims:
    """A session's claim and record, asyncpg prepared statements on its connection (prepared once
    per connection by asyncpg's statement cache)."""

    conn: asyncpg.Connection[asyncpg.Record]

    async def claim(self, now: datetime, take: int) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(_CLAIM, now, take))

    async def record_sent(self, ids: list[str], now: datetime) -> None:
        await self.conn.execute(_RECORD_SENT, ids, now)


@dataclass(slots=True)
class _Group:
    claimed: int = 0
    sent: int = 0
    refused: list[tuple[asyncpg.Record, Refused]] = field(default_factory=list)
    unavailable: tuple[asyncpg.Record, RelayUnavailable] | None = None


async def _deliver_group(
    db: _Claims, relay: Relay, settings: NotificationsSettings, now: datetime, take: int
) -> _Group:
    """One transaction: claim up to ``take`` due messages (one SELECT ... FOR UPDATE SKIP LOCKED in
    the pending index's order), hand each over, record those sent in one UPDATE, commit. With
    ``take`` 1 (``send_group``'s default) each message's record is committed before the session
    hands over the next: the window of one message.

    A refusal or an unreachable relay is recorded after the commit (:func:`_record_failures`): a
    kill in between leaves that message pending, and it was not sent, so nothing goes twice."""
    out = _Group()
    async with db.conn.transaction():
        rows = await db.claim(now, take)
        out.claimed = len(rows)
        done: list[str] = []
        bounced: set[tuple[str, str]] = set()  # a hard bounce cancels the address's other mail
        for row in rows:
            if (row["tenant_id"], row["recipient"]) in bounced:
                continue
            failpoints.hit("notifications.mail.before_send")
            try:
                await relay.send(
                    Outgoing(
                        message_id=row["id"],
                        sender=settings.mail_from,
                        recipient=row["recipient"],
                        subject=row["subject"],
                        text=row["body_text"],
                        html=row["body_html"],
                        headers=json.loads(row["headers"]),
                    )
                )
            except Refused as e:
                out.refused.append((row, e))
                if e.permanent:
                    bounced.add((row["tenant_id"], row["recipient"]))
                log.warning(
                    "message refused", extra={"message_id": row["id"], "permanent": e.permanent, "error": str(e)[:300]}
                )
                continue
            except RelayUnavailable as e:
                out.unavailable = (row, e)  # the rest of the group stays pending
                break
            failpoints.hit("notifications.mail.after_send")
            done.append(row["id"])
        if done:
            await db.record_sent(done, now)
        out.sent = len(done)
    return out


async def _record_failures(session: AsyncSession, group: _Group, now: datetime) -> None:
    """The group's attempts that did not hand a message over: counted, and failed for good (a hard
    bounce also suppresses the address) or retried later."""
    for row, refused in group.refused:
        await _failed(session, row["id"], str(refused), now, permanent=refused.permanent)
        if refused.permanent:
            await suppress(session, row["tenant_id"], row["employee_id"], row["recipient"], str(refused), now)
    if group.unavailable is not None:
        row, unavailable = group.unavailable
        await _failed(session, row["id"], str(unavailable), now, permanent=False)


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


async def _failed(session: AsyncSession, message_id: str, error: str, now: datetime, *, permanent: bool) -> None:
    """An attempt that did not hand the message over: counted, and failed for good or retried later."""
    attempts = await session.scalar(
        sa.update(Message)
        .where(col(Message.id) == message_id)
        .values(attempts=col(Message.attempts) + 1, last_error=error[:1000])
        .returning(col(Message.attempts))
    )
    if permanent:
        values: dict[str, object] = {"state": MessageState.failed.value}
    else:
        values = {"next_attempt_at": now + domain.retry_delay(int(attempts or 1), RETRY_BASE)}
    await session.execute(sa.update(Message).where(col(Message.id) == message_id).values(**values))


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
