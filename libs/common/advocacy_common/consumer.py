"""The consumer runner: batches from Kafka, one database transaction per batch, exactly-once effects.

For each batch (``getmany``): parse every record into an Envelope (a record that is not a valid
event goes to the dead-letter topic), claim the events in the ``inbox`` table in the same
transaction as their effects (a redelivered ``(source, id)`` is skipped), apply them through the
service's handler, commit the database, and only then commit the Kafka offsets. If the handler
fails on the batch, the events are applied one by one under savepoints so the poisoned one is
dead-lettered and the rest still land: a bad event never blocks its partition. A lock conflict
(deadlock, serialization failure) is nobody's fault: the whole transaction is applied again instead.
If the database is unreachable, the consumer seeks back to the batch start and retries.

A broker that lost its log (docs/adr/0004-reading-after-a-wipe.md) does not always say so: Tansu
answers a fetch past the end of its new, shorter log with an empty batch, never
``OFFSET_OUT_OF_RANGE``, so ``auto_offset_reset`` never fires. The runner therefore rewinds a
partition to its start itself when its position lies beyond the log's end (the high watermark of
the last fetch, confirmed by a ListOffsets), and every partition when the process's topic watch
says the broker was wiped (:meth:`ConsumerRunner.rewind`). The inbox makes the re-read harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from advocacy_common import failpoints, topics, tracing
from advocacy_common.db import INBOX
from advocacy_common.events.base import REGISTRY, Envelope, InvalidEvent, decode, twin
from advocacy_common.kafka import ensure_topics, make_consumer, start_with_retry
from advocacy_common.kafka_connection import KafkaConnection
from advocacy_common.observability import CONSUMER_BATCH_SECONDS, CONSUMER_LAG, EVENTS_CONSUMED, HEAP_TRIMMED_AT

log = logging.getLogger("advocacy.consumer")

# One prepared statement for any batch size (a multi-row VALUES list is compiled anew for every
# batch, which profiling showed to cost more than the insert itself). The rows travel as one JSON
# text (orjson) that PostgreSQL parses once: a ``text[]`` parameter per column made asyncpg check
# every element against the collections ABCs (six ``isinstance`` calls per event). It answers with
# the events already claimed (redelivered), not the new ones: a drained backlog is nearly all new,
# and every result row costs the consumer an asyncpg record, a SQLAlchemy row and a tuple.
_CLAIM = sa.text(
    "WITH batch AS MATERIALIZED ("
    "SELECT r->>0 AS source, r->>1 AS event_id, r->>2 AS event_type "
    "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r), "
    "claimed AS (INSERT INTO inbox (source, event_id, event_type) SELECT source, event_id, event_type FROM batch "
    "ON CONFLICT DO NOTHING RETURNING source, event_id) "
    "SELECT source, event_id FROM batch EXCEPT SELECT source, event_id FROM claimed"
)

Handler = Callable[[AsyncSession, Sequence[Envelope[Any]]], Awaitable[None]]

# ``ConsumerSpec.fetch_max_wait_ms`` of the consumers between a click and the live board (sharing's
# verdict worker, gamification): docs/latency-budget.md. An idle consumer of 24 partitions on Tansu
# costs the broker and itself ~3 % of a core at 100 ms, ~5 % at 50, ~11 % at 20; a record reaches a
# waiting consumer p50 26 / p90 48 ms late at 100, 9 / 15 ms at 50, 7 / 12 ms at 20 (2026-12-04).
CLICK_PATH_FETCH_MAX_WAIT_MS = 50


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """What a service consumes: a group, its topics and the batch handler."""

    group_id: str
    topics: tuple[str, ...]
    handler: Handler
    # Automatic garbage collection off while a batch is applied (see :func:`gc_paused`).
    pause_gc: bool = False
    # Fetch and decode the next batch while this one is applied (one more batch held in memory).
    # When the batch in hand is done, what arrived after the fetch ahead returned is added to the
    # next batch (up to ``batch_max``), rather than waiting a batch more (:meth:`ConsumerRunner._top_up`).
    fetch_ahead: bool = False
    # With ``fetch_ahead``: fetch ahead only while the batch in hand has fewer events than this (None:
    # always). A live consumer's batches are small and keep the fetch ahead (the click path's wait);
    # a backlog's full batches then hold one decoded batch in memory, not two (ADR 0036).
    fetch_ahead_below: int | None = None
    # How long the broker may hold a fetch that found nothing new (Kafka's ``fetch.max.wait.ms``):
    # Tansu does not answer a waiting fetch when a record arrives, so a caught-up consumer receives
    # a record up to this late (measured p50/max: 25/55 ms at 100, 9/19 ms at 50, 7/15 ms at 20).
    # Shorter costs an idle consumer more fetches. The click path's consumers (docs/latency-budget.md)
    # set it lower; the others keep the default.
    fetch_max_wait_ms: int = 100
    # The event types (``ce_type``) the handler acts on, when its topics carry others it ignores
    # (metrics reads the gamification topic for redemptions only): a record of another registered
    # type is neither decoded nor claimed in the inbox, only committed past. Empty: every type.
    types: frozenset[str] = frozenset()
    # Types whose handler is idempotent by the fact's own key: a redelivery, even under another event
    # id, inserts nothing and moves nothing (metrics' clicks: the click facts' primary key). They are
    # not claimed in the inbox (docs/adr/0021-fact-keyed-events-skip-the-inbox.md); a poisoned one has
    # no inbox mark, so a redelivery dead-letters it again.
    keyed_types: frozenset[str] = frozenset()
    # Transactions a batch of at least LANE_MIN_EVENTS events is applied in, at once: its events split
    # by their Kafka key (:func:`_lanes`), so each key's events stay in one transaction, in order. While
    # one waits on the database the process works on another, and the database runs both (issue 19).
    # The lanes' rows must be disjoint but for a few shared ones written last (gamification's score
    # counts: ``ledger.post``), else the second waits on the first's locks until it commits.
    lanes: int = 1
    # Types whose events the handler receives with light data: ``Envelope.data`` is the type's frozen
    # msgspec twin (:func:`advocacy_common.events.base.twin`: the model's fields, ``TYPE``, ``MODEL``,
    # ``model_dump()``), not the pydantic model, whenever the light decoder takes the payload (what
    # our producers write); else the model. For hot types a handler only reads (metrics' clicks: ~2 us
    # less per click to decode, read and free). The handler must take both (``type(data).MODEL``;
    # docs/adr/0037-light-data-for-read-only-hot-types.md).
    light_types: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Parsed:
    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope[Any]


# A record decoded: its envelope, or (the record, why it is not a valid event).
_Decoded = _Parsed | tuple[ConsumerRecord[bytes, bytes], str]


@dataclass(slots=True)
class _Fetched:
    batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    records: list[ConsumerRecord[bytes, bytes]]
    decoded: list[_Decoded]
    # :attr:`ConsumerRunner.generation` when the fetch began: a batch fetched before a rewind is
    # applied (the inbox dedupes) but its offsets, which may belong to the lost log, are not committed.
    generation: int


# A smaller batch (what a caught-up consumer fetches) is applied in one transaction: a lane costs a
# transaction's round trips, and a split batch of a few events overlaps little.
LANE_MIN_EVENTS = 1000


def _lanes(parsed: list[_Parsed], lanes: int) -> list[list[_Parsed]]:
    """A batch's events as the parts applied at once (:attr:`ConsumerSpec.lanes`): a record's part is
    by its key (CRC-32, lane 0 without one), so a key's events are one part's, in the batch's order.

    Kafka keeps order per key (a person's events, a link's), and only that: two partitions' records
    were never applied in any one order (two replicas apply them at once). A part claims its events
    in the inbox in its own transaction, as a replica's batch does; the runner commits the batch's
    offsets once every part has committed (:meth:`ConsumerRunner._process`)."""
    if lanes <= 1 or len(parsed) < LANE_MIN_EVENTS:
        return [parsed]
    parts: list[list[_Parsed]] = [[] for _ in range(lanes)]
    for p in parsed:
        key = p.record.key
        parts[zlib.crc32(key) % lanes if key else 0].append(p)
    return [part for part in parts if part]


def _in_batch_order(parsed: list[_Parsed], parts: list[list[_Parsed]], fresh: list[list[_Parsed]]) -> list[_Parsed]:
    """The fresh events of a batch applied in ``parts`` (each part's ``fresh`` a subsequence of it), in
    the batch's order: the batch itself when no part dropped one (a backlog's), without a sort."""
    if all(len(f) == len(part) for f, part in zip(fresh, parts, strict=True)):
        return parsed
    order = {id(p): i for i, p in enumerate(parsed)}
    return sorted((p for f in fresh for p in f), key=lambda p: order[id(p)])


_DECODE_SLICE = 500
# A batch's log line: every batch at DEBUG; at INFO one that took longer than this (a slow handler
# or database is what an operator looks for). Ids are listed for batches of up to this many events.
_SLOW_BATCH_SECONDS = 1.0
_LISTED_EVENTS = 20


def _decode(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    types: frozenset[bytes] = frozenset(),
    light: frozenset[str] = frozenset(),
) -> list[_Decoded]:
    """Each record as an envelope, or (record, why it is not a valid event); with ``types``, a record
    of a registered type not among them is left out (read from its ``ce_type`` header, undecoded).
    A record without that header, or of an unknown type, is decoded and so dead-lettered as before.
    ``light``: :attr:`ConsumerSpec.light_types`."""
    out: list[_Decoded] = []
    for r in records:
        if types and _ignored(r.headers, types):
            continue
        try:
            out.append(_Parsed(r, decode(r.headers, r.value, light)))
        except InvalidEvent as e:
            out.append((r, str(e)))
    return out


def _ignored(headers: Sequence[tuple[str, bytes]] | None, types: frozenset[bytes]) -> bool:
    for k, v in headers or ():
        if k == "ce_type":
            return v not in types and v.decode(errors="replace") in REGISTRY
    return False


class _GcPause:
    depth = 0  # batches being applied (a process may run several consumers)
    draining = 0  # run loops working through a backlog (see :func:`gc_draining`)
    ours = False  # whether the pause turned collection off (it was on): it turns it on again
    ended = 0  # batch ends since the last collection
    young = 0  # young collections since the last middle one
    middle = 0  # middle collections since the last full one


# Collection off for a whole drain; the young generation is collected every this many batch ends,
# every _GC_MIDDLE_EVERY young collections the middle one, every _GC_FULL_EVERY middle ones all
# of them (the collector's own thresholds count 700 allocations, then 10 and 10 collections).
# Each young collection walks what is alive then, so a drain's are made by its run loop once it has
# let go of the batch it applied (:func:`gc_between_batches`): only the batch fetched ahead is alive.
# At the batch's end, with that batch's records and envelopes still held, it was ~4 us per event of
# a 5,000-event batch, 7.7 % of gamification's CPU at every batch's end (py-spy, 2026-12-04). A
# batch's garbage is freed by reference counting; only its cycles wait for the collection.
_GC_YOUNG_EVERY = 4
_GC_MIDDLE_EVERY = 10
_GC_FULL_EVERY = 10


def _gc_hold() -> None:
    if _GcPause.depth == 0 and _GcPause.draining == 0:
        _GcPause.ours = gc.isenabled()
        if _GcPause.ours:
            gc.disable()


def _gc_collect() -> None:
    _GcPause.ended = 0
    _GcPause.young += 1
    if _GcPause.young < _GC_MIDDLE_EVERY:
        gc.collect(0)
        return
    _GcPause.young = 0
    _GcPause.middle += 1
    if _GcPause.middle < _GC_FULL_EVERY:
        gc.collect(1)
        return
    _GcPause.middle = 0
    gc.collect()


def _gc_release() -> None:
    """After a batch ends or a drain stops: collection on again once nothing holds it off, and
    the young generation collected every :data:`_GC_YOUNG_EVERY` batch ends meanwhile."""
    if not _GcPause.ours:
        return
    if _GcPause.depth == 0 and _GcPause.draining == 0:
        _GcPause.ours = False
        gc.enable()
        if _GcPause.ended:
            _gc_collect()
    elif _GcPause.draining == 0 and _GcPause.ended >= _GC_YOUNG_EVERY:
        _gc_collect()


def gc_between_batches() -> None:
    """In a drain (:func:`gc_draining`), the young generation collected every
    :data:`_GC_YOUNG_EVERY` batch ends: called by the run loop after it let go of the batch it
    applied, so the collection does not walk that batch's records and envelopes."""
    if _GcPause.ours and _GcPause.draining and _GcPause.ended >= _GC_YOUNG_EVERY:
        _gc_collect()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Automatic garbage collection off while a batch is applied; a young-generation collection
    when collection comes back on, or every few batch ends while a drain keeps it off.

    Everything a batch allocates (records, envelopes, rows, parameters) stays alive until the
    batch ends, so the collector's passes during the batch find nothing to free while walking
    more and more objects: 6-14 us per event on 5,000-event batches (harness), a fifth of the
    consumer's Python time. What the batch leaves behind is freed by reference counting when
    it ends; cycles are found by the collections that follow, also while another batch is
    applied or a drain (:func:`gc_draining`) keeps collection off. Full collections come with
    catching up (:func:`release_free_memory`), and every few hundred batches of a drain."""
    _gc_hold()
    _GcPause.depth += 1
    try:
        yield
    finally:
        _GcPause.depth -= 1
        _GcPause.ended += 1
        _gc_release()


@contextlib.contextmanager
def gc_draining() -> Iterator[None]:
    """Collection stays off between the batches of a backlog (a run loop's fetches that return
    records): at each batch's end it found the same objects alive (the batch just applied, and
    the next, fetched ahead) and little garbage. Ended by a fetch that returns nothing."""
    _gc_hold()
    _GcPause.draining += 1
    try:
        yield
    finally:
        _GcPause.draining -= 1
        _gc_release()


class _Frozen:
    done = False


def freeze_startup_heap() -> None:
    """Take what the process allocated before consuming out of the collector's sight, once.

    A service holds ~160,000 objects once imported (modules, pydantic schemas, SQLAlchemy tables,
    the app) that live as long as the process; every full collection walked them all again, while
    a consumer's garbage is its batches. ``gc.freeze`` moves them to the permanent generation."""
    if not _Frozen.done:
        _Frozen.done = True
        gc.collect()
        gc.freeze()


# A batch's records, at most this many bytes (values and keys, plus HEADER_ALLOWANCE each) as well
# as ``batch_max`` records: a batch of small events (a click is ~350 bytes, ~2.5 KB once decoded)
# is bounded by its count, one of large ones (content events may carry 512 KB) by this. The bound
# comes from the previous batch's mean record size, so records are never cut from a fetched batch
# (nothing to seek back): a batch is over it only when the records suddenly grow, and then at most
# by the broker's fetch size.
BATCH_MAX_BYTES = 8 * 1024 * 1024
HEADER_ALLOWANCE = 512  # our CloudEvents headers with a traceparent: ~300 bytes


@dataclass(slots=True)
class BatchBound:
    """How many records the next fetch may take: ``max_records``, fewer if they are large."""

    max_records: int
    max_bytes: int = BATCH_MAX_BYTES
    record_bytes: int = 0  # mean size of a record of the last batch (0: none seen yet)

    def next_records(self) -> int:
        if not self.record_bytes:
            return self.max_records
        return max(1, min(self.max_records, self.max_bytes // self.record_bytes))

    def fetched(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        if records:
            size = sum(r.serialized_value_size + max(r.serialized_key_size, 0) for r in records)
            self.record_bytes = size // len(records) + HEADER_ALLOWANCE


# Records applied since the heap was last trimmed, below which catching up does not trim (a live
# consumer catches up many times a second; a drained backlog is what leaves a large free heap).
TRIM_AFTER_RECORDS = 10_000
# ...unless it then stays caught up this long: the tail of a burst (fewer records than the above
# since the last trim) is given back once the traffic has stopped, not kept until the next burst.
TRIM_IDLE_SECONDS = 5.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None
    return trim


_TRIM = _malloc_trim()


@dataclass(slots=True)
class TrimWhenCaughtUp:
    """When to give freed memory back: on catching up after at least ``after`` records applied, or
    after fewer once caught up for ``idle_seconds`` (every fetch since returned nothing).

    Benchmark 3's live traffic (sharing's verdict worker, 1,000 clicks/s for 60 s) trimmed at
    catching up ~40 s and ~58 s in (141.4 -> 138.8 MB); what the last records before the traffic
    stopped freed stayed in the heap until the next burst."""

    after: int = TRIM_AFTER_RECORDS
    idle_seconds: float = TRIM_IDLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    untrimmed: int = 0
    caught_up_at: float | None = None  # the first empty fetch since records were applied

    def fetched(self, records: int) -> bool:
        """Called with each fetch's record count (0: caught up); True when it is time to trim."""
        if records:
            self.untrimmed += records
            self.caught_up_at = None
            return False
        if not self.untrimmed:
            return False
        if self.untrimmed < self.after:
            now = self.clock()
            if self.caught_up_at is None:
                self.caught_up_at = now
            if now - self.caught_up_at < self.idle_seconds:
                return False
        self.untrimmed = 0
        self.caught_up_at = None
        return True


def release_free_memory() -> None:
    """A full collection, then the C heap's free pages given back to the system (glibc ``malloc_trim``).

    Draining a backlog in batches of thousands of events allocates tens of MB per batch (records,
    envelopes, statement parameters); freed, most of it stays in glibc's heap, below live objects,
    so the process keeps the RSS of its largest moment. Python's own allocator frees a 1 MB arena
    only once nothing in it lives: the collection first frees the batches' cycles and empties the
    free lists (up to 2,000 spare tuples of each size, dicts, lists...), which pin arenas otherwise
    (harness, 20 batches of 5,000 clicks decoded and recorded, three runs each: RSS left after the
    trim +11 to +13 MB with the collection, +17 MB without). Its time is exported
    (:data:`~advocacy_common.observability.HEAP_TRIMMED_AT`): bench.pipeline reads a drained
    consumer's memory once it is done."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
    HEAP_TRIMMED_AT.set_to_current_time()


class ConsumerRunner:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        service: str,
        bootstrap: KafkaConnection | str,
        sessionmaker: async_sessionmaker[AsyncSession],
        producer: Callable[[], AIOKafkaProducer | None],
        batch_max: int = 1000,
        on_applied: Callable[[Sequence[Envelope[Any]]], None] | None = None,
        session_timeout_ms: int = 10000,
        dead_letter_partitions: int = 6,
    ) -> None:
        self.session_timeout_ms = session_timeout_ms
        self.dead_letter_partitions = dead_letter_partitions
        self.spec = spec
        self.service = service
        self.bootstrap = bootstrap
        self.sessionmaker = sessionmaker
        self.producer = producer
        self.batch_max = batch_max
        self.on_applied = on_applied
        self.consumer: AIOKafkaConsumer | None = None
        self.dead_letter_topic = topics.dead_letter(spec.group_id)
        self.applied = 0
        self.ignored = 0  # records of types the handler does not act on (``ConsumerSpec.types``)
        self._types = frozenset(t.encode() for t in spec.types)
        for t in spec.light_types:  # a type without a twin fails here, not on its first event
            if t not in REGISTRY:
                raise ValueError(f"light type {t!r} is not a registered event type")
            twin(REGISTRY[t])
        self.duplicates = 0
        self.dead_lettered = 0
        self.connected = False
        # Wipes of the broker's log this runner was told of (the topic watch) and has rewound for.
        self.wipes = 0
        self._rewound_for = 0
        self.rewinds = 0  # partitions read again from their start (told of a wipe, or found past the end)
        self._ahead: asyncio.Task[_Fetched] | None = None  # the next batch, fetched while one is applied
        # Per partition, the lowest offset fetched but not applied (the last applied + 1): where the
        # partition is sought back to when what was fetched beyond it will not be applied.
        self._unapplied: dict[TopicPartition, int] = {}
        self._trim = TrimWhenCaughtUp()
        self._bound = BatchBound(batch_max)

    def rewind(self) -> None:
        """The broker lost its log: read every assigned partition again from its start.

        Called by the topic watch (another task): the run loop rewinds before its next fetch, and
        commits the start offsets so that a member joining later does not resume from an offset
        committed in the lost log."""
        self.wipes += 1

    @property
    def generation(self) -> int:
        """Changes whenever a rewind is asked for or done."""
        return self.wipes + self.rewinds

    async def run(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(
            self.bootstrap,
            self.spec.group_id,
            self.spec.topics,
            max_poll_records=self.batch_max,
            session_timeout_ms=self.session_timeout_ms,
            fetch_max_wait_ms=self.spec.fetch_max_wait_ms,
        )
        self.consumer = consumer
        if not await start_with_retry(consumer, stop, what=f"consumer {self.spec.group_id}"):
            return
        self.connected = True
        freeze_startup_heap()
        # With ``fetch_ahead``, the next batch is fetched and decoded while this one waits on the
        # database (the two overlap on two cores). Offsets stay exact: a batch's offsets are
        # committed after its own database commit, batches are applied one after another, and a
        # fetched batch that is never applied (stop) is never committed, so it is delivered again.
        self._ahead = None
        # With ``pause_gc``, collection stays off from a fetch that returns records to the next
        # that returns none (:func:`gc_draining`).
        drain, draining = contextlib.ExitStack(), False
        try:
            while not stop.is_set():
                if self._rewound_for != self.wipes:
                    await self._rewind_assigned(consumer)
                ahead: asyncio.Task[_Fetched] | None = self._ahead
                self._ahead = None
                fetched = await (ahead or self._fetch(consumer))
                if ahead is not None and fetched.records:
                    await self._top_up(consumer, fetched)
                if fetched.records:
                    if self.spec.pause_gc and not draining:
                        drain.enter_context(gc_draining())
                        draining = True
                    if self._fetches_ahead(len(fetched.records)) and not stop.is_set():
                        self._ahead = asyncio.ensure_future(self._fetch(consumer))
                    await self._process_until_done(consumer, fetched, stop)
                elif draining:
                    drain.close()
                    draining = False
                records = len(fetched.records)
                del fetched, ahead  # the batch applied, before the collection (the task held it too)
                if draining:
                    gc_between_batches()
                if self._trim.fetched(records):  # caught up after a backlog
                    release_free_memory()
                await self._watch_positions(consumer)
        finally:
            drain.close()
            self.connected = False
            await self._seek_to_unapplied(consumer)
            try:
                await consumer.stop()
            except Exception as e:  # stopping must not hide the reason we stopped
                log.warning("consumer stop failed", extra={"group": self.spec.group_id, "error": str(e)})

    def _fetches_ahead(self, in_hand: int) -> bool:
        """Whether the next batch is fetched while one of ``in_hand`` events is applied."""
        below = self.spec.fetch_ahead_below
        return self.spec.fetch_ahead and (below is None or in_hand < below)

    async def _seek_to_unapplied(self, consumer: AIOKafkaConsumer) -> None:
        """What was fetched will not all be applied (stop, a failure): discard the fetch
        running ahead, then seek every assigned partition back to its lowest unapplied offset.
        Seeking back to the start of the batch in hand is not enough once another batch was fetched
        beyond it, maybe from other partitions."""
        await _discard(self._ahead)
        self._ahead = None
        for tp in consumer.assignment():
            if tp in self._unapplied:
                with contextlib.suppress(KafkaError):  # revoked meanwhile: its next owner reads on
                    consumer.seek(tp, self._unapplied[tp])

    async def _fetch(self, consumer: AIOKafkaConsumer, timeout_ms: int = 200, max_records: int = 0) -> _Fetched:
        generation = self.generation
        batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records or self._bound.next_records())
        records = [r for recs in batch.values() for r in recs]
        for tp, recs in batch.items():
            self._unapplied.setdefault(tp, recs[0].offset)
        self._bound.fetched(records)
        decoded: list[_Decoded] = []
        for i in range(0, len(records), _DECODE_SLICE):
            if i:
                await asyncio.sleep(0)  # let the batch in hand go on with its statements
            decoded += _decode(records[i : i + _DECODE_SLICE], self._types, self.spec.light_types)
        return _Fetched(batch, records, decoded, generation)

    async def _top_up(self, consumer: AIOKafkaConsumer, fetched: _Fetched) -> None:
        """Add to a batch fetched ahead what the client received since (no waiting), up to the bound.

        The fetch ahead returns with the first records that arrive while a batch is applied; those
        that arrive later would otherwise wait for the batch after it, a whole batch's time more
        (caught up, most records: at 250-500 clicks/s on 2 loaded cores gamification's batches take
        50-120 ms). Per partition the added records follow the ones fetched ahead (the client hands
        out each partition's records in order), so the batch stays one run of offsets per partition.
        A full batch (a backlog) takes nothing; nor does one fetched before a rewind."""
        room = self._bound.next_records() - len(fetched.records)
        if room <= 0 or fetched.generation != self.generation:
            return
        more = await self._fetch(consumer, timeout_ms=0, max_records=room)
        for tp, recs in more.batch.items():
            fetched.batch.setdefault(tp, []).extend(recs)
        fetched.records += more.records
        fetched.decoded += more.decoded

    async def _process_until_done(self, consumer: AIOKafkaConsumer, fetched: _Fetched, stop: asyncio.Event) -> None:
        batch, records = fetched.batch, fetched.records
        backoff = 0.2
        while True:
            try:
                with CONSUMER_BATCH_SECONDS.labels(self.service, self.spec.group_id).time():
                    await self.process(records, decoded=fetched.decoded)
                break
            except (OSError, sa.exc.DBAPIError, sa.exc.InterfaceError, TimeoutError, KafkaError) as e:
                # Infrastructure failed (database or dead-letter publish): nothing was committed.
                log.warning(
                    "consumer batch failed, retrying",
                    extra={
                        "group": self.spec.group_id,
                        "records": len(records),
                        "error": f"{type(e).__name__}: {e}",
                        "retry_in_s": backoff,
                    },
                )
                if stop.is_set():
                    return  # the run loop ends by seeking back (:meth:`_seek_to_unapplied`)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        # the crash window exactly-once must survive: effects committed, offsets not yet
        failpoints.hit("consumer.after_db_commit")
        if fetched.generation != self.generation:
            log.warning(
                "consumer batch fetched before a rewind applied; offsets not committed",
                extra={"group": self.spec.group_id, "records": len(records)},
            )
            return
        offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items()}
        self._unapplied.update(offsets)
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as e:
            # A rebalance took the partitions; the next owner redelivers and the inbox skips them.
            log.warning(
                "consumer offset commit failed; redelivery will be deduplicated",
                extra={"group": self.spec.group_id, "error": f"{type(e).__name__}: {e}"},
            )

    async def process(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        *,
        decoded: Sequence[_Decoded] | None = None,
    ) -> None:
        """Apply one batch exactly once (public so tests can drive it without a broker loop).
        ``decoded``: the records already decoded (in order), as the run loop does ahead.
        Traced as one span linked to each event's context (:func:`tracing.linked_span`)."""
        contexts = [tracing.context_in(r.headers) for r in records] if tracing.ON else ()
        with tracing.linked_span(
            f"{self.spec.group_id} process",
            contexts,
            attributes={
                "messaging.consumer.group.name": self.spec.group_id,
                "messaging.batch.message_count": len(records),
            },
        ):
            if self.spec.pause_gc:
                with gc_paused():
                    await self._process(records, decoded)
            else:
                await self._process(records, decoded)

    async def _process(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        decoded: Sequence[_Decoded] | None,
    ) -> None:
        began = time.perf_counter()
        parsed: list[_Parsed] = []
        invalid: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        for d in _decode(records, self._types, self.spec.light_types) if decoded is None else decoded:
            if isinstance(d, _Parsed):
                parsed.append(d)
            else:
                invalid.append(d)
        self.ignored += len(records) - len(parsed) - len(invalid)
        for r, err in invalid:
            await self._dead_letter(r, err)

        parts = _lanes(parsed, self.spec.lanes)
        if len(parts) == 1:
            fresh, failed = await self._apply_again_on_conflict(parts[0])
        else:
            # every part ends (commits or fails) before the batch does: a failed batch is applied
            # again whole (what a committed part holds is skipped by the inbox and the handlers' keys)
            results = await asyncio.gather(*map(self._apply_again_on_conflict, parts), return_exceptions=True)
            done = [r for r in results if not isinstance(r, BaseException)]
            if len(done) < len(results):
                raise next(r for r in results if isinstance(r, BaseException))
            fresh = _in_batch_order(parsed, parts, [part_fresh for part_fresh, _ in done])
            failed = [f for _, part_failed in done for f in part_failed]
        dupes = len(parsed) - len(fresh)
        if dupes:  # counted once the transaction committed (a retried one claims them again)
            self.duplicates += dupes
            fresh_ids = {id(p) for p in fresh}
            self._count([p.envelope for p in parsed if id(p) not in fresh_ids], "duplicate")
        if failed:
            dead = {id(p) for p, _ in failed}
            applied = [p.envelope for p in fresh if id(p) not in dead]
        else:
            applied = [p.envelope for p in fresh]
        self.applied += len(applied)
        self._count(applied, "applied")
        if log.isEnabledFor(logging.DEBUG) or time.perf_counter() - began > _SLOW_BATCH_SECONDS:
            self._log_batch(records, applied, len(parsed) - len(fresh), len(invalid) + len(failed), began)
        if applied and self.on_applied is not None:
            self.on_applied(applied)

    async def _apply_again_on_conflict(self, parsed: list[_Parsed]) -> tuple[list[_Parsed], list[tuple[_Parsed, str]]]:
        """:meth:`_apply`, again after a short pause when it lost a lock conflict."""
        for attempt in range(_LOCK_CONFLICT_RETRIES + 1):
            try:
                return await self._apply(parsed)
            except sa.exc.DBAPIError as e:
                if not _is_lock_conflict(e) or attempt == _LOCK_CONFLICT_RETRIES:
                    raise
                log.info(
                    "consumer batch lost a lock conflict; applying it again",
                    extra={"group": self.spec.group_id, "records": len(parsed), "error": _sqlstate(e)},
                )
                await asyncio.sleep(_LOCK_CONFLICT_PAUSE * 2**attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _apply(self, parsed: list[_Parsed]) -> tuple[list[_Parsed], list[tuple[_Parsed, str]]]:
        """One transaction: claim the batch in the inbox, apply the fresh events, dead-letter the
        poisoned ones. Returns (the fresh events, the dead-lettered ones with why).

        A lock conflict (deadlock or serialization failure, :func:`_is_lock_conflict`) is not the
        events' fault: it leaves the batch and the whole transaction rolls back, to be applied
        again, rather than sending healthy events one by one to the dead-letter topic."""
        failed: list[tuple[_Parsed, str]] = []
        async with self.sessionmaker() as session, session.begin():
            fresh = await self._claim(session, parsed)
            envelopes = [p.envelope for p in fresh]
            if envelopes:
                try:
                    async with session.begin_nested():
                        await self.spec.handler(session, envelopes)
                except (sa.exc.DBAPIError, sa.exc.InterfaceError, OSError) as e:
                    if _is_connection_error(e) or _is_lock_conflict(e):
                        raise
                    failed = await self._apply_one_by_one(session, fresh)
                except Exception:
                    failed = await self._apply_one_by_one(session, fresh)
            if failed:
                await session.execute(
                    sa.update(INBOX)
                    .where(
                        sa.tuple_(INBOX.c.source, INBOX.c.event_id).in_(
                            [(self._inbox_source(p.envelope), p.envelope.id) for p, _ in failed]
                        )
                    )
                    .values(dead_lettered=True)
                )
                # Published before the inbox marks commit: if the publish fails, the transaction
                # rolls back and the batch is applied again (the handlers' effects too), so a
                # dead letter is never lost behind a committed mark; a commit that fails after the
                # publish sends it again (the record carries its event id: a duplicate, not a loss).
                for p, err in failed:
                    await self._dead_letter(p.record, err)
        return fresh, failed

    def _log_batch(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        applied: Sequence[Envelope[Any]],
        duplicates: int,
        dead_lettered: int,
        began: float,
    ) -> None:
        """One line per batch: at DEBUG, or at INFO when it was slow. The tenants and event ids are
        listed for small batches only (a line stays a line)."""
        seconds = time.perf_counter() - began
        fields: dict[str, Any] = {
            "group": self.spec.group_id,
            "records": len(records),
            "applied": len(applied),
            "duplicates": duplicates,
            "dead_lettered": dead_lettered,
            "event_types": dict(Counter(e.type for e in applied)),
            "duration_ms": round(seconds * 1000, 1),
        }
        if len(applied) <= _LISTED_EVENTS:
            fields["tenant_ids"] = sorted({e.tenant_id for e in applied})
            fields["event_ids"] = [e.id for e in applied]
        level = logging.INFO if seconds > _SLOW_BATCH_SECONDS else logging.DEBUG
        log.log(level, "consumer batch applied", extra=fields)

    def _count(self, envelopes: Sequence[Envelope[Any]], outcome: str) -> None:
        """``events_consumed_total`` by type: one labelled increment per type, not per event."""
        for event_type, n in Counter(e.data.TYPE for e in envelopes).items():
            EVENTS_CONSUMED.labels(self.service, self.spec.group_id, event_type, outcome).inc(n)

    async def _apply_one_by_one(self, session: AsyncSession, fresh: list[_Parsed]) -> list[tuple[_Parsed, str]]:
        failed: list[tuple[_Parsed, str]] = []
        for p in fresh:
            try:
                async with session.begin_nested():
                    await self.spec.handler(session, [p.envelope])
            except Exception as e:
                if _is_connection_error(e) or _is_lock_conflict(e):
                    raise
                log.exception(
                    "consumer event failed",
                    extra={
                        "group": self.spec.group_id,
                        "event_id": p.envelope.id,
                        "event_type": p.envelope.type,
                        "tenant_id": p.envelope.tenant_id,
                    },
                )
                failed.append((p, f"{type(e).__name__}: {e}"[:1000]))
        return failed

    def _inbox_source(self, envelope: Envelope[Any]) -> str:
        """The inbox is per consumer group: two groups in one service (content's board copy and its
        partner feed, say) each apply an event once. The group is folded into the stored source."""
        return f"{self.spec.group_id} {envelope.source}"

    async def _claim(self, session: AsyncSession, parsed: list[_Parsed]) -> list[_Parsed]:
        """Insert the batch's event ids into the inbox; return the ones not seen before, in order."""
        keyed = self.spec.keyed_types
        if keyed and all(p.envelope.data.TYPE in keyed for p in parsed):
            return list(parsed)  # all keyed (a drained backlog of clicks): nothing to claim or drop
        unique: dict[tuple[str, str], _Parsed] = {}
        prefix = f"{self.spec.group_id} "
        for p in parsed:
            if keyed and p.envelope.data.TYPE in keyed:
                # neither claimed nor dropped as a copy here: the handler's key absorbs a copy in this
                # batch as in another (so the duplicate count stays the inbox's); a key of its own
                unique[(p.envelope.data.TYPE, f"#{len(unique)}")] = p
            else:
                unique.setdefault((prefix + p.envelope.source, p.envelope.id), p)
        if not unique:
            return []
        rows = [
            (source, event_id, event_type)
            for (source, event_id), p in unique.items()
            if (event_type := p.envelope.data.TYPE) not in keyed
        ]
        result = await session.execute(_CLAIM, {"rows": orjson.dumps(rows).decode()})
        claimed_before = set(map(tuple, result.all()))
        # keep the batch order (partition order) for the fresh ones
        fresh = (
            [p for key, p in unique.items() if key not in claimed_before] if claimed_before else list(unique.values())
        )
        return fresh

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: str) -> None:
        producer = self.producer()
        if producer is None:
            raise KafkaError("no producer for the dead-letter topic")
        headers = [
            *list(record.headers or ()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_consumer_group", self.spec.group_id.encode()),
            ("dlq_error", error.encode()[:4000]),
        ]
        try:
            fut = await producer.send(self.dead_letter_topic, record.value, key=record.key, headers=headers)
            await asyncio.wait_for(fut, 10)
        except (KafkaError, TimeoutError):
            # a wiped broker lost the topic (nothing auto-creates it): create it, let the batch retry
            await ensure_topics(self.bootstrap, [self.dead_letter_topic], self.dead_letter_partitions)
            raise
        self.dead_lettered += 1
        ctype = next((v.decode(errors="replace") for k, v in record.headers or () if k == "ce_type"), "unknown")
        EVENTS_CONSUMED.labels(self.service, self.spec.group_id, ctype, "dead_lettered").inc()
        log.warning(
            "event dead-lettered",
            extra={
                "dlq": True,
                "group": self.spec.group_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "event_type": ctype,
                "error": error,
            },
        )

    async def _watch_positions(self, consumer: AIOKafkaConsumer) -> bool:
        """Lag per partition from the last fetch's high watermark (no extra broker round trip), and
        a partition whose position lies beyond the log's end read again from its start (True)."""
        beyond: list[TopicPartition] = []
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:
                pos = await asyncio.wait_for(consumer.position(tp), 1)
            except (KafkaError, TimeoutError, AssertionError):
                continue
            if pos > high:
                beyond.append(tp)
            CONSUMER_LAG.labels(self.service, self.spec.group_id, tp.topic, str(tp.partition)).set(max(0, high - pos))
        return bool(beyond) and await self._rewind_beyond_end(consumer, beyond)

    async def _rewind_beyond_end(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        """Partitions whose position is past the high watermark of the last fetch: a log shorter than
        what this consumer already read, so not the log it read. Kafka never shows a consumer a high
        watermark below its position for the same log, but a new partition leader may report a lower
        one for a moment (KIP-207), so the log end is asked for again (ListOffsets, which Kafka
        answers only once the new leader caught up) before anything is re-read."""
        try:
            ends = await asyncio.wait_for(consumer.end_offsets(tps), 10)
            positions = {tp: await asyncio.wait_for(consumer.position(tp), 1) for tp in tps}
        except (KafkaError, TimeoutError, AssertionError) as e:
            log.warning(
                "consumer log end not confirmed; asking again after the next fetch",
                extra={"group": self.spec.group_id, "error": f"{type(e).__name__}: {e}"},
            )
            return False
        confirmed = [tp for tp in tps if ends.get(tp, positions[tp]) < positions[tp]]
        if not confirmed:
            return False
        log.warning(
            "consumer position beyond the log end (the broker lost its log): reading from the start",
            extra={
                "group": self.spec.group_id,
                "partitions": [
                    {"topic": tp.topic, "partition": tp.partition, "position": positions[tp], "log_end": ends[tp]}
                    for tp in confirmed
                ],
            },
        )
        return await self._seek_to_start(consumer, confirmed)

    async def _rewind_assigned(self, consumer: AIOKafkaConsumer) -> bool:
        """Do what :meth:`rewind` asked, once the group has given this member its partitions."""
        tps = sorted(consumer.assignment())
        if not tps:
            return False  # rejoining: the rewind waits for the assignment
        wipes = self.wipes
        log.warning(
            "consumer: the broker lost its log; reading from the start",
            extra={"group": self.spec.group_id, "partitions": len(tps)},
        )
        if await self._seek_to_start(consumer, tps):
            self._rewound_for = wipes
            return True
        return False

    async def _seek_to_start(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        """Seek to each partition's first offset and commit it (a committed offset of the lost log
        would otherwise bring a member that joins later back to it). False when the first offsets
        could not be asked for: nothing was moved."""
        try:
            starts = await asyncio.wait_for(consumer.beginning_offsets(tps), 10)
        except (KafkaError, TimeoutError, AssertionError) as e:
            log.warning(
                "consumer first offsets not known; rewinding later",
                extra={"group": self.spec.group_id, "error": f"{type(e).__name__}: {e}"},
            )
            return False
        # The fetch running ahead goes first: finishing after the seek, it would move the positions
        # past records it read from the start, and its records are not applied (they were lost:
        # s4 once missed 14 clicks of one employee in gamification this way).
        await _discard(self._ahead)
        self._ahead = None
        for tp in tps:
            consumer.seek(tp, starts[tp])
            self._unapplied.pop(tp, None)
        self.rewinds += len(tps)
        try:
            await consumer.commit({tp: starts[tp] for tp in tps})
        except (CommitFailedError, KafkaError, AssertionError) as e:
            # the partitions moved to another member, which finds the committed offset beyond the
            # log's end and rewinds by itself
            log.warning(
                "consumer rewound offsets not committed",
                extra={"group": self.spec.group_id, "error": f"{type(e).__name__}: {e}"},
            )
        return True


async def _discard(task: asyncio.Task[_Fetched] | None) -> None:
    """Cancel a fetch whose records will not be applied (they are delivered again)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _is_connection_error(e: BaseException) -> bool:
    if isinstance(e, OSError | TimeoutError):
        return True
    if isinstance(e, sa.exc.DBAPIError):
        return bool(e.connection_invalidated)
    return isinstance(e, sa.exc.InterfaceError)


# SQLSTATEs of a transaction that lost a lock conflict: deadlock_detected (two transactions took
# the same rows or advisory locks in opposite orders: two replicas whose batches
# share an event or a row) and serialization_failure. The batch did nothing wrong: applied again,
# it succeeds; applied one by one, the event that happened to be running would be dead-lettered.
_LOCK_CONFLICTS = frozenset({"40P01", "40001"})
_LOCK_CONFLICT_RETRIES = 5  # then the batch fails like any database error (retried with backoff)
_LOCK_CONFLICT_PAUSE = 0.02  # seconds before the first retry, doubled each time


def _sqlstate(e: BaseException) -> str | None:
    code = getattr(getattr(e, "orig", None), "sqlstate", None)
    return code if isinstance(code, str) else None


def _is_lock_conflict(e: BaseException) -> bool:
    return isinstance(e, sa.exc.DBAPIError) and _sqlstate(e) in _LOCK_CONFLICTS
