"""The sender: from the click journal to Kafka, in journal order, advancing the cursor on acks.

Runs as an API task. Nothing here is on the redirect's path: the redirect only appends to the
journal and, if the sender sleeps, wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from advocacy_common import topics, tracing
from advocacy_common.events.base import CONTENT_TYPE, SPECVERSION
from advocacy_common.events.sharing import ClickReceived
from advocacy_sharing.adapters.spool import ClickJournal, Record
from advocacy_sharing.settings import SOURCE

log = logging.getLogger("advocacy.sharing.emitter")

_STATIC_HEADERS = (
    ("ce_specversion", SPECVERSION.encode()),
    ("ce_source", SOURCE.encode()),
    ("ce_type", ClickReceived.TYPE.encode()),
    ("content-type", CONTENT_TYPE.encode()),
)
_partitioner = DefaultPartitioner()


def headers_of(rec: Record) -> list[tuple[str, bytes]]:
    """The CloudEvents binary-mode headers of a journaled click (as Envelope.headers() would), with
    the trace context the redirect journaled (the distributed-tracing extension)."""
    hs = [
        _STATIC_HEADERS[0],
        ("ce_id", rec.click_id.encode()),
        _STATIC_HEADERS[1],
        _STATIC_HEADERS[2],
        ("ce_time", rec.time.encode()),
        ("ce_tenantid", rec.tenant_id.encode()),
        _STATIC_HEADERS[3],
    ]
    if rec.traceparent:
        hs.append((tracing.TRACEPARENT, rec.traceparent.encode()))
        if rec.tracestate:
            hs.append((tracing.TRACESTATE, rec.tracestate.encode()))
    return hs


# Keys are "<tenant>:<code>": a code-shaped code and a tenant id from a verified token (an identity
# provider's short id); at ~100 bytes with the entry, 65,536 entries hold ~13 MB (advocacy_common.caches).
@lru_cache(maxsize=65536)
def _partition(key: bytes, n: int) -> int:
    parts = list(range(n))
    return int(_partitioner(key, parts, parts))


class ClickSender:
    def __init__(
        self,
        journal: ClickJournal,
        producer: Callable[[], AIOKafkaProducer | None],
        *,
        send_timeout: float = 10.0,
        batch_records: int = 500,
        topic: str = topics.CLICKS_RAW,
        fsync_seconds: float = 1.0,
        idle_seconds: float = 0.05,
    ) -> None:
        self.journal = journal
        self.producer = producer
        self.send_timeout = send_timeout
        self.batch_records = batch_records
        self.topic = topic
        self.fsync_seconds = fsync_seconds
        # nothing to send: sleep this long unless the redirect wakes us (settings: click_send_idle_seconds)
        self.idle_seconds = idle_seconds
        self.sent = 0
        self.failures = 0
        self.idle = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        if self.idle:
            self.idle = False
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        self.idle = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
        self.idle = False

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set and the journal is caught up (the shutdown flush)."""
        backoff = 0.1
        last_sync = last_purge = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now - last_sync > self.fsync_seconds:
                    await asyncio.to_thread(self.journal.fsync)
                    self.journal.maybe_roll()
                    last_sync = now
                if now - last_purge > 30:  # a directory listing: size limits need it often
                    await asyncio.to_thread(self.journal.purge)
                    last_purge = now
                records, pos = self.journal.read(self.batch_records)
                if not records:
                    if pos != self.journal.cursor:
                        self.journal.advance(pos)  # skipped malformed lines
                    if stop.is_set():
                        return
                    await self._sleep(self.idle_seconds)
                    continue
                producer = self.producer()
                if producer is None:
                    await (asyncio.sleep(0.1) if stop.is_set() else self._sleep(0.2))
                    continue
                try:
                    await self.send(producer, records)
                except Exception as e:
                    self.failures += 1
                    log.warning(
                        "sending clicks failed; they stay in the journal",
                        extra={"clicks": len(records), "error": f"{type(e).__name__}: {e}"},
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.1
                self.journal.advance(pos)
                self.sent += len(records)
        finally:
            with contextlib.suppress(OSError):
                self.journal.fsync()

    async def send(self, producer: AIOKafkaProducer, records: list[Record]) -> None:
        """One Kafka batch per partition (much cheaper than a send() per record); wait for the acks."""
        n = len(await asyncio.wait_for(producer.partitions_for(self.topic), self.send_timeout))
        batches: dict[int, Any] = {}
        futures = []
        for rec in records:
            key = f"{rec.tenant_id}:{rec.code}".encode()
            p = _partition(key, n)
            batch = batches.get(p)
            if batch is None:
                batch = batches[p] = producer.create_batch()
            meta = batch.append(key=key, value=rec.value, timestamp=None, headers=headers_of(rec))
            if meta is None:  # full: ship it, start another
                futures.append(await producer.send_batch(batch, self.topic, partition=p))
                batch = batches[p] = producer.create_batch()
                batch.append(key=key, value=rec.value, timestamp=None, headers=headers_of(rec))
        for p, batch in batches.items():
            futures.append(await producer.send_batch(batch, self.topic, partition=p))
        await asyncio.wait_for(asyncio.gather(*futures), self.send_timeout)
