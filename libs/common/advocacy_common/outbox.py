"""The transactional outbox: events are rows written with the change; a relay publishes them.

The relay takes unpublished rows ``FOR UPDATE SKIP LOCKED`` in id order (never "id > last
seen": sequence values commit out of order), marks them sent and publishes them in one
transaction (a failed publish rolls the marks back). Exactly one relay per service publishes at a
time (a PostgreSQL advisory lock, and every batch taken on the session that holds it), so events
with the same key keep their order. Sent rows are kept for a retention window so they can be
re-published to a broker that lost its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer, errors
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from advocacy_common import tracing
from advocacy_common.bulk import rows_param
from advocacy_common.db import OUTBOX
from advocacy_common.errors import Unprocessable
from advocacy_common.events.base import Envelope
from advocacy_common.observability import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PARKED,
    OUTBOX_PARKED_TOTAL,
)

log = logging.getLogger("advocacy.outbox")


def outbox_row(envelope: Envelope[Any]) -> dict[str, Any]:
    """The row :func:`add_events` writes for ``envelope`` (the trace context is the current one)."""
    return {
        "event_id": envelope.id,
        "topic": envelope.topic,
        "key": envelope.key,
        "event_type": envelope.type,
        "tenant_id": envelope.tenant_id,
        "headers": [[k, v] for k, v in [*envelope.header_texts(), *tracing.current_headers()]],
        "value": envelope.value(),
    }


# One fixed-text statement whatever the number of events (one round trip, prepared once per
# connection): the rows as one JSON array (orjson, in C; bulk.rows_param's form), inserted in list
# order (their ids keep that order, and the relay publishes by id). The headers travel as JSON in
# the row; the value, an event's JSON (UTF-8, never a raw NUL), as its text, stored as the same bytes
# (``convert_to``). One array per column (the form before) cost asyncpg two ``isinstance`` checks
# against the collections ABCs per element, seven elements an event, and a JSON text per event for
# its headers: ~2.5 us an event, ~2,000 events a batch in gamification's consumer (issue 19).
_ADD_EVENTS = sa.text(
    f"INSERT INTO {OUTBOX.name} (event_id, topic, key, event_type, tenant_id, headers, value) "  # noqa: S608
    "SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->5, convert_to(r->>6, 'UTF8') "
    "FROM jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS x(r, n) ORDER BY n"
)


# The largest event value the outbox takes: half the producer's (and Apache Kafka's default broker)
# 1 MiB request limit, leaving room for headers and batch framing. Inputs are bounded at the API so
# that no event comes near it; this check is what turns a missed bound into a 422 for the one
# request, instead of a row the relay could never send.
MAX_EVENT_BYTES = 512 * 1024


class EventTooLarge(Unprocessable):
    """An event of this request would exceed :data:`MAX_EVENT_BYTES`; names its largest field."""

    @classmethod
    def of(cls, envelope: Envelope[Any], size: int) -> EventTooLarge:
        fields = envelope.data.model_dump(mode="json")
        largest = max(fields, key=lambda k: len(orjson.dumps(fields[k])), default="body")
        message = f"the change is too large to publish ({size:,} bytes, at most {MAX_EVENT_BYTES:,}): shorten {largest}"
        return cls(message, details=[{"field": largest, "message": message}])


async def add_events(session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
    """Write events to the outbox in the caller's transaction (rows equal to :func:`outbox_row`).
    An event larger than :data:`MAX_EVENT_BYTES` raises :class:`EventTooLarge` (422) and nothing is
    written."""
    if not envelopes:
        return
    values = [e.value() for e in envelopes]
    for envelope, value in zip(envelopes, values, strict=True):
        if len(value) > MAX_EVENT_BYTES:
            raise EventTooLarge.of(envelope, len(value))
    # the context the events are written in (the request's, the consumed batch's) goes with them:
    # the relay publishes later, in its own
    trace_headers = tracing.current_headers()
    rows = [
        (e.id, e.topic, e.key, e.data.TYPE, e.tenant_id, [*e.header_texts(), *trace_headers], value.decode())
        for e, value in zip(envelopes, values, strict=True)
    ]
    await session.execute(_ADD_EVENTS, rows_param(rows))


async def add_event(session: AsyncSession, envelope: Envelope[Any]) -> None:
    await add_events(session, [envelope])


def advisory_lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"outbox-relay:{name}".encode()).digest()[:8], "big", signed=True)


ProducerGetter = Callable[[], AIOKafkaProducer | None]

# One batch: the oldest unpublished rows, locked (SKIP LOCKED) and marked sent in one fixed-text
# statement. A variable-length ``id IN (...)`` was a new statement text for every batch size (no
# prepared statement reuse) and a second round trip. Headers come as JSON text, parsed by orjson
# (the driver's JSONB codec is the stdlib json module). Parked rows are not taken, and neither is
# any row of a (topic, key) that has a parked row: a key's events keep their order, so one bad
# event holds back that key alone (ix_outbox_parked is empty in the normal case: the check is free).
_TAKE_BATCH = sa.text(
    f"UPDATE {OUTBOX.name} SET published_at = now() WHERE id IN ("  # noqa: S608 - our table name
    f"SELECT o.id FROM {OUTBOX.name} o WHERE o.published_at IS NULL AND o.parked_at IS NULL "
    f"AND NOT EXISTS (SELECT 1 FROM {OUTBOX.name} p WHERE p.parked_at IS NOT NULL "
    "AND p.topic = o.topic AND p.key = o.key) "
    "ORDER BY o.id LIMIT :n FOR UPDATE OF o SKIP LOCKED) "
    "RETURNING id, topic, key, CAST(headers AS text), value, event_type"
)


class LockLost(RuntimeError):
    """The relay's lock connection was invalidated (its session, and so its lock, are gone): stop
    publishing and wait for the lock again."""


_PARK = sa.text(
    f"UPDATE {OUTBOX.name} SET published_at = NULL, parked_at = now(), park_reason = :reason "  # noqa: S608
    "WHERE id = :id"
)
_RELEASE = sa.text(f"UPDATE {OUTBOX.name} SET published_at = NULL WHERE id = ANY(CAST(:ids AS bigint[]))")  # noqa: S608

# What the broker will never take, however often it is sent (every other error is retried, the
# batch's marks rolled back). An authorization or connection error is not here: fixing the broker
# side lets the same row through.
PERMANENT = (
    errors.MessageSizeTooLargeError,
    errors.RecordTooLargeError,
    errors.InvalidTopicError,
    errors.UnsupportedForMessageFormatError,
    errors.CorruptRecordException,
)


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:500]


def _row_id(row: Any) -> int:
    return int(row[0])


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: ProducerGetter,
        *,
        service: str,
        poll_seconds: float = 0.05,
        batch_size: int = 1000,
        send_timeout: float = 10.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.engine = engine
        self.producer = producer
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.send_timeout = send_timeout
        self.retention = retention
        self.lock_id = advisory_lock_id(service)
        self._lock_pid: int | None = None  # the backend holding our lock, while run() holds it (logs, tests)
        self._wake = asyncio.Event()
        self.published = 0
        self.parked = 0
        self.holding_lock = False

    def kick(self) -> None:
        """Wake the relay now (called after a transaction that wrote outbox rows commits)."""
        self._wake.set()

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        self._wake.clear()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                async with self.engine.connect() as lock_conn:
                    got = await lock_conn.scalar(sa.select(sa.func.pg_try_advisory_lock(self.lock_id)))
                    await lock_conn.commit()
                    if not got:
                        await self._sleep(stop, 1.0)
                        continue
                    self.holding_lock = True
                    self._lock_pid = await lock_conn.scalar(sa.select(sa.func.pg_backend_pid()))
                    await lock_conn.commit()
                    try:
                        await self._publish_loop(stop, lock_conn)
                    except BaseException:
                        # The batch's transaction is on this connection, in whatever state the
                        # error left it (a commit cut short leaves it open): end the session, and
                        # with it the transaction and the lock, rather than unlock on it.
                        await lock_conn.invalidate()
                        raise
                    finally:
                        self.holding_lock = False
                        self._lock_pid = None
                    await lock_conn.scalar(sa.select(sa.func.pg_advisory_unlock(self.lock_id)))
                    await lock_conn.commit()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning(
                    "outbox relay failed, retrying",
                    extra={"error": f"{type(e).__name__}: {e}", "retry_in_s": backoff},
                )
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _publish_loop(self, stop: asyncio.Event, lock_conn: AsyncConnection) -> None:
        """Publish while the lock is held: every batch is taken, marked and committed on the lock
        connection, the session that holds the advisory lock. That is the fence: a session that is
        gone runs no statement (and its uncommitted marks roll back as it ends, before its lock is
        released), a live one holds the lock. No per-batch check of pg_locks (which takes every
        lock-manager partition lock) is needed."""
        last_stats = 0.0
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            # A failed statement invalidates the connection and raises out of this loop; were the
            # connection used again, SQLAlchemy would reconnect it: a new session, without the lock.
            if lock_conn.invalidated or lock_conn.closed:
                raise LockLost(f"outbox relay ({self.service}): the lock connection is gone")
            producer = self.producer()
            sent = await self._publish_batch_on(lock_conn, producer) if producer is not None else 0
            now = loop.time()
            if now - last_stats > 5:
                await self._stats()
                last_stats = now
            if now - last_purge > 3600:
                await self.purge()
                last_purge = now
            if sent < self.batch_size:
                await self._sleep(stop, self.poll_seconds if producer is not None else 0.5)

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Publish one batch of unpublished rows, in id order; mark them sent. Returns the count.

        Called directly (tests, tools), on a connection of its own and without the advisory lock;
        :meth:`run` publishes on the connection that holds it."""
        async with self.engine.connect() as conn:
            return await self._publish_batch_on(conn, producer)

    async def _publish_batch_on(self, conn: AsyncConnection, producer: AIOKafkaProducer) -> int:
        """One batch in one transaction on ``conn``. The rows are marked sent and returned by one
        fixed-text statement (prepared once per connection, whatever the batch size), then
        published; a failed send raises and the transaction rolls the marks back, so a row is sent
        at least once and marked only with its batch sent."""
        async with conn.begin(), contextlib.AsyncExitStack() as spans:
            # RETURNING keeps no order; events with one key must go out in id order
            rows = sorted((await conn.execute(_TAKE_BATCH, {"n": self.batch_size})).all(), key=_row_id)
            if not rows:
                return 0
            if tracing.ON:  # the publish is a trace of its own (it happens later), linked to each event's
                spans.enter_context(
                    tracing.linked_span(
                        f"{self.service} outbox publish",
                        [tracing.context_in(orjson.loads(r[3])) for r in rows],
                        kind=SpanKind.PRODUCER,
                        attributes={"messaging.batch.message_count": len(rows)},
                        follow=False,
                    )
                )
            sent: list[tuple[Any, asyncio.Future[Any]]] = []
            parked: list[tuple[Any, BaseException]] = []
            held: set[tuple[str, str]] = set()  # keys with a row parked in this batch: the rest wait
            released: list[int] = []
            send = producer.send
            loads = orjson.loads
            for r in rows:
                if (r[1], r[2]) in held:
                    released.append(_row_id(r))
                    continue
                headers = [(k, v.encode()) for k, v in loads(r[3])]
                try:
                    sent.append((r, await send(r[1], r[4], key=r[2].encode(), headers=headers)))
                except PERMANENT as refused:  # refused before sending (the producer checks the size)
                    parked.append((r, refused))
                    held.add((r[1], r[2]))
            results = await asyncio.wait_for(
                asyncio.gather(*(f for _, f in sent), return_exceptions=True), self.send_timeout
            )
            for (r, _), result in zip(sent, results, strict=True):
                if isinstance(result, PERMANENT):
                    # refused by the broker: later rows of the key in this batch may have gone out
                    parked.append((r, result))
                elif isinstance(result, BaseException):
                    raise result  # anything else: roll every mark back, the batch goes again
            for r, why in parked:
                await conn.execute(_PARK, {"id": _row_id(r), "reason": _reason(why)})
            if released:
                await conn.execute(_RELEASE, {"ids": released})
        for r, e in parked:
            OUTBOX_PARKED_TOTAL.labels(self.service, r[1], type(e).__name__).inc()
            log.error(
                "outbox row parked",
                extra={"row_id": r[0], "topic": r[1], "key": r[2], "event_type": r[5], "reason": _reason(e)},
            )
        done = [
            r for r, result in zip((r for r, _ in sent), results, strict=True) if not isinstance(result, BaseException)
        ]
        counts = Counter((r[1], r[5]) for r in done)
        for (topic, event_type), n in counts.items():
            EVENTS_PUBLISHED.labels(self.service, topic, event_type).inc(n)
        self.published += len(done)
        self.parked += len(parked)
        return len(rows)

    async def _stats(self) -> None:
        waiting = OUTBOX.c.published_at.is_(None) & OUTBOX.c.parked_at.is_(None)
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        sa.func.count().filter(waiting),
                        sa.func.min(OUTBOX.c.created_at).filter(waiting),
                        sa.func.count().filter(OUTBOX.c.parked_at.is_not(None)),
                    ).where(OUTBOX.c.published_at.is_(None))
                )
            ).one()
        OUTBOX_BACKLOG.labels(self.service).set(row[0])
        age = (datetime.now(UTC) - row[1]).total_seconds() if row[1] else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(age)
        OUTBOX_PARKED.labels(self.service).set(row[2])

    async def purge(self) -> int:
        cutoff = datetime.now(UTC) - self.retention
        async with self.engine.begin() as conn:
            res = await conn.execute(
                sa.delete(OUTBOX).where(OUTBOX.c.published_at.is_not(None), OUTBOX.c.created_at < cutoff)
            )
        return int(res.rowcount or 0)

    async def republish_since(self, since: datetime) -> int:
        """Mark sent rows for publishing again (the broker lost its log; consumers deduplicate)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                sa.update(OUTBOX)
                .where(OUTBOX.c.published_at.is_not(None), OUTBOX.c.created_at >= since)
                .values(published_at=None)
            )
        self.kick()
        return int(res.rowcount or 0)


# -- parked rows: what an operator sees and does (``python -m advocacy_<service> outbox ...``) ----------
async def parked_rows(engine: AsyncEngine, *, limit: int = 100) -> list[dict[str, Any]]:
    """The parked rows, oldest first, with how many rows of their key wait behind them."""
    query = sa.text(
        f"SELECT p.id, p.topic, p.key, p.event_type, p.tenant_id, p.parked_at, p.park_reason, "  # noqa: S608
        f"(SELECT count(*) FROM {OUTBOX.name} w WHERE w.topic = p.topic AND w.key = p.key "
        "AND w.published_at IS NULL AND w.parked_at IS NULL) AS waiting "
        f"FROM {OUTBOX.name} p WHERE p.parked_at IS NOT NULL ORDER BY p.id LIMIT :n"
    )
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query, {"n": limit})).all()]


async def retry_parked(engine: AsyncEngine, ids: Sequence[int] | None = None) -> int:
    """Put parked rows back in line (all of them when ``ids`` is None); returns how many."""
    stmt = sa.update(OUTBOX).where(OUTBOX.c.parked_at.is_not(None)).values(parked_at=None, park_reason=None)
    if ids is not None:
        stmt = stmt.where(OUTBOX.c.id.in_(list(ids)))
    async with engine.begin() as conn:
        return int((await conn.execute(stmt)).rowcount or 0)


async def discard_parked(engine: AsyncEngine, ids: Sequence[int]) -> int:
    """Give up on parked rows: marked published (never sent), so their key's later rows go on."""
    stmt = (
        sa.update(OUTBOX)
        .where(OUTBOX.c.parked_at.is_not(None), OUTBOX.c.id.in_(list(ids)))
        .values(published_at=sa.func.now(), park_reason=OUTBOX.c.park_reason + " (discarded)", parked_at=None)
    )
    async with engine.begin() as conn:
        return int((await conn.execute(stmt)).rowcount or 0)
