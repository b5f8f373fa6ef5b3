"""The transactional outbox: events are rows written with the change; a relay publishes them.

The relay takes unpublished rows ``FOR UPDATE SKIP LOCKED`` in id order (never "id > last
seen": sequence values commit out of order), marks them sent and publishes them in one
transaction (a failed publish rolls the marks back). Exactly one relay per service publishes at a
time (a PostgreSQL advisory lock), so events with the same key keep their order. Sent rows are kept
for a retention window so they can be re-published to a broker that lost its log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from advocacy_common.bulk import unnest_insert
from advocacy_common.db import OUTBOX
from advocacy_common.events.base import Envelope
from advocacy_common.observability import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE

log = logging.getLogger("advocacy.outbox")


def outbox_row(envelope: Envelope[Any]) -> dict[str, Any]:
    return {
        "event_id": envelope.id,
        "topic": envelope.topic,
        "key": envelope.key,
        "event_type": envelope.type,
        "tenant_id": envelope.tenant_id,
        "headers": [[k, v] for k, v in envelope.header_texts()],
        "value": envelope.value(),
    }


# One fixed-text statement whatever the number of events (one round trip, prepared once per
# connection): each column as an array, rows inserted in list order (their ids keep that order, and
# the relay publishes by id). A multi-row INSERT compiled a bind parameter per cell, executemany a
# round trip per row. The values are bytes, which JSON cannot carry: arrays, not the JSON-rows form.
_ADD_EVENTS = unnest_insert(
    OUTBOX, ("event_id", "topic", "key", "event_type", "tenant_id", "headers", "value"), ordered=True
)


async def add_events(session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
    """Write events to the outbox in the caller's transaction (rows equal to :func:`outbox_row`)."""
    if not envelopes:
        return
    await session.execute(
        _ADD_EVENTS,
        {
            "event_id": [e.id for e in envelopes],
            "topic": [e.topic for e in envelopes],
            "key": [e.key for e in envelopes],
            "event_type": [e.type for e in envelopes],
            "tenant_id": [e.tenant_id for e in envelopes],
            "headers": [orjson.dumps(e.header_texts()).decode() for e in envelopes],
            "value": [e.value() for e in envelopes],
        },
    )


async def add_event(session: AsyncSession, envelope: Envelope[Any]) -> None:
    await add_events(session, [envelope])


def advisory_lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"outbox-relay:{name}".encode()).digest()[:8], "big", signed=True)


ProducerGetter = Callable[[], AIOKafkaProducer | None]

# One batch: the oldest unpublished rows, locked (SKIP LOCKED) and marked sent in one fixed-text
# statement. A variable-length ``id IN (...)`` was a new statement text for every batch size (no
# prepared statement reuse) and a second round trip. Headers come as JSON text, parsed by orjson
# (the driver's JSONB codec is the stdlib json module).
_TAKE_BATCH = sa.text(
    f"UPDATE {OUTBOX.name} SET published_at = now() WHERE id IN ("  # noqa: S608 - our table name
    f"SELECT id FROM {OUTBOX.name} WHERE published_at IS NULL ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED) "
    "RETURNING id, topic, key, CAST(headers AS text), value, event_type"
)


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
        self._wake = asyncio.Event()
        self.published = 0
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
                    try:
                        await self._publish_loop(stop, lock_conn)
                    finally:
                        self.holding_lock = False
                        if not lock_conn.closed and not lock_conn.invalidated:
                            await lock_conn.scalar(sa.select(sa.func.pg_advisory_unlock(self.lock_id)))
                            await lock_conn.commit()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("outbox relay (%s) error: %s; retrying in %.1fs", self.service, e, backoff)
                await self._sleep(stop, backoff)
                backoff = min(backoff * 2, 5.0)

    async def _publish_loop(self, stop: asyncio.Event, lock_conn: AsyncConnection) -> None:
        last_stats = 0.0
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            producer = self.producer()
            sent = await self.publish_batch(producer) if producer is not None else 0
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

        The rows are marked sent and returned by one fixed-text statement (prepared once per
        connection, whatever the batch size), then published; a failed send raises and the
        transaction rolls the marks back, so a row is sent at least once and marked only with its
        batch sent."""
        async with self.engine.begin() as conn:
            # RETURNING keeps no order; events with one key must go out in id order
            rows = sorted((await conn.execute(_TAKE_BATCH, {"n": self.batch_size})).all(), key=_row_id)
            if not rows:
                return 0
            futures = []
            send = producer.send
            loads = orjson.loads
            for r in rows:
                headers = [(k, v.encode()) for k, v in loads(r[3])]
                futures.append(await send(r[1], r[4], key=r[2].encode(), headers=headers))
            await asyncio.wait_for(asyncio.gather(*futures), self.send_timeout)
        counts = Counter((r[1], r[5]) for r in rows)
        for (topic, event_type), n in counts.items():
            EVENTS_PUBLISHED.labels(self.service, topic, event_type).inc(n)
        self.published += len(rows)
        return len(rows)

    async def _stats(self) -> None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(OUTBOX.c.created_at)).where(OUTBOX.c.published_at.is_(None))
                )
            ).one()
        OUTBOX_BACKLOG.labels(self.service).set(row[0])
        age = (datetime.now(UTC) - row[1]).total_seconds() if row[1] else 0.0
        OUTBOX_OLDEST_AGE.labels(self.service).set(age)

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
