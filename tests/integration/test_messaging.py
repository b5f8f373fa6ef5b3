"""The outbox relay and the consumer runner against the real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from advocacy_common import topics
from advocacy_common.consumer import ConsumerRunner, ConsumerSpec
from advocacy_common.db import OUTBOX, add_messaging_tables, make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.kafka import ensure_topics, make_producer
from advocacy_common.outbox import (
    MAX_EVENT_BYTES,
    EventTooLarge,
    OutboxRelay,
    add_events,
    discard_parked,
    parked_rows,
    retry_parked,
)

META = sa.MetaData()
add_messaging_tables(META)
EFFECTS = sa.Table(
    "effects",
    META,
    sa.Column("share_id", sa.Text, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)


def share(i: int, employee: str = "alice") -> ShareCreated:
    return ShareCreated(
        share_id=f"s{i}",
        employee_id=employee,
        content_id="c",
        network="x",
        code=f"code{i:06d}",
        created_at=datetime.now(UTC),
    )


@pytest.fixture
async def engine(new_database: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(new_database)
    async with eng.begin() as conn:
        await conn.run_sync(META.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
async def producer(broker: Any) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(broker.bootstrap)
    await p.start()
    yield p
    await p.stop()


async def read_topic(bootstrap: str, topic: str, n: int, timeout: float = 15) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < n:
                batch = await consumer.getmany(timeout_ms=200)
                for recs in batch.values():
                    out.extend(recs)
    finally:
        await consumer.stop()
    return out


async def test_relay_publishes_in_order_and_marks_sent(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_topic: Callable[..., Awaitable[str]]
) -> None:
    await ensure_topics(broker.bootstrap, [topics.SHARES], 6)
    tenant = f"t-relay-{id(engine)}"
    events = [new_event("/test", tenant, share(i)) for i in range(50)]
    async with make_sessionmaker(engine)() as s, s.begin():
        await add_events(s, events)
    relay = OutboxRelay(engine, lambda: producer, service="test-relay")
    sent = await relay.publish_batch(producer)
    assert sent == 50
    assert await relay.publish_batch(producer) == 0  # nothing left unpublished
    async with engine.connect() as conn:
        unpublished = await conn.scalar(sa.select(sa.func.count()).where(OUTBOX.c.published_at.is_(None)))
    assert unpublished == 0
    # all 50 share one key, so they are in one partition, in outbox order
    consumer = AIOKafkaConsumer(topics.SHARES, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    mine: list[str] = []
    try:
        async with asyncio.timeout(15):
            while len(mine) < 50:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    mine += [
                        dict(r.headers)["ce_id"].decode()
                        for r in recs
                        if dict(r.headers)["ce_tenantid"] == tenant.encode()
                    ]
    finally:
        await consumer.stop()
    assert mine == [e.id for e in events]


async def test_only_one_relay_holds_the_lock(engine: AsyncEngine, producer: AIOKafkaProducer) -> None:
    a = OutboxRelay(engine, lambda: producer, service="lock-test", poll_seconds=0.01)
    b = OutboxRelay(engine, lambda: producer, service="lock-test", poll_seconds=0.01)
    stop = asyncio.Event()
    ta = asyncio.create_task(a.run(stop))
    async with asyncio.timeout(5):
        while not a.holding_lock:
            await asyncio.sleep(0.01)
    tb = asyncio.create_task(b.run(stop))
    await asyncio.sleep(0.5)
    assert a.holding_lock and not b.holding_lock
    stop.set()
    await asyncio.gather(ta, tb)


async def test_a_relay_whose_lock_connection_is_killed_stops_publishing(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any
) -> None:
    await ensure_topics(broker.bootstrap, [topics.SHARES], 6)
    tenant = f"t-fence-{id(engine)}"
    relay = OutboxRelay(engine, lambda: producer, service="fence-test", poll_seconds=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(5):
            while relay._lock_pid is None:
                await asyncio.sleep(0.01)
        async with make_sessionmaker(engine)() as s, s.begin():
            await add_events(s, [new_event("/test", tenant, share(0))])
        async with asyncio.timeout(10):
            while relay.published < 1:  # it publishes while it holds the lock
                await asyncio.sleep(0.01)
        lock_pid = relay._lock_pid
        async with engine.connect() as other:
            # the lock connection dies; another relay takes the lock at once
            await other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": lock_pid})
            async with asyncio.timeout(5):  # the lock is free once the backend has exited
                while not await other.scalar(sa.select(sa.func.pg_try_advisory_lock(relay.lock_id))):
                    await asyncio.sleep(0.01)
            async with make_sessionmaker(engine)() as s, s.begin():
                await add_events(s, [new_event("/test", tenant, share(i)) for i in range(1, 21)])
            await asyncio.sleep(1.5)
            unpublished = await other.scalar(
                sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
            )
            assert unpublished == 20 and relay.published == 1, (unpublished, relay.published)
            assert not relay.holding_lock  # it noticed, and waits for the lock like any other relay
            await other.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            await other.commit()
        async with asyncio.timeout(10):
            while relay.published < 21:  # with the lock back, it publishes again
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class _LoseLockOnFirstSend:
    """The real producer; as the relay hands it its first record (the batch is taken and marked, not
    committed), the relay's lock connection is terminated and another session takes the lock."""

    def __init__(self, producer: AIOKafkaProducer, engine: AsyncEngine, relay: OutboxRelay) -> None:
        self._producer, self._engine, self._relay = producer, engine, relay
        self.other: Any = None

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        if self.other is None:
            self.other = await self._engine.connect()
            await self.other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": self._relay._lock_pid})
            async with asyncio.timeout(5):
                while not await self.other.scalar(sa.select(sa.func.pg_try_advisory_lock(self._relay.lock_id))):
                    await asyncio.sleep(0.01)
        return await self._producer.send(*args, **kwargs)


async def test_a_batch_in_flight_when_the_lock_is_lost_is_not_marked_sent(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any
) -> None:
    # The new lock holder must find the batch unpublished and send it before any later row of its
    # keys; marks committed by the old relay after it lost the lock would let later rows go first.
    await ensure_topics(broker.bootstrap, [topics.SHARES], 6)
    async with make_sessionmaker(engine)() as s, s.begin():
        await add_events(s, [new_event("/test", f"t-inflight-{id(engine)}", share(i)) for i in range(10)])
    relay = OutboxRelay(engine, lambda: None, service="inflight-test", poll_seconds=0.01)
    losing = _LoseLockOnFirstSend(producer, engine, relay)
    relay.producer = lambda: losing  # type: ignore[assignment,return-value]
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(10):
            # the batch ends: rolled back as the relay notices it lost the lock (or, unfenced, marked)
            while losing.other is None or (relay.holding_lock and relay.published == 0):
                await asyncio.sleep(0.01)
        unpublished = await losing.other.scalar(
            sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
        )
        assert unpublished == 10 and relay.published == 0, (unpublished, relay.published)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        if losing.other is not None:
            await losing.other.close()


async def test_republish_sends_sent_rows_again(engine: AsyncEngine, producer: AIOKafkaProducer) -> None:
    async with make_sessionmaker(engine)() as s, s.begin():
        await add_events(s, [new_event("/test", "t-rep", share(i)) for i in range(5)])
    relay = OutboxRelay(engine, lambda: producer, service="rep-test")
    assert await relay.publish_batch(producer) == 5
    assert await relay.republish_since(datetime(2000, 1, 1, tzinfo=UTC)) == 5
    assert await relay.publish_batch(producer) == 5


class Recorder:
    """A handler that applies shares to the effects table; refuses share ids listed in ``poison``."""

    def __init__(self, poison: set[str] | None = None) -> None:
        self.poison = poison or set()
        self.calls = 0

    async def __call__(self, session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
        self.calls += 1
        for e in events:
            if e.data.share_id in self.poison:
                raise ValueError(f"cannot apply {e.data.share_id}")
            await session.execute(
                sa.text(
                    "INSERT INTO effects (share_id, n) VALUES (:s, 1)"
                    " ON CONFLICT (share_id) DO UPDATE SET n = effects.n + 1"
                ),
                {"s": e.data.share_id},
            )


async def produce(producer: AIOKafkaProducer, topic: str, envs: Sequence[Envelope[Any]]) -> None:
    futs = [await producer.send(topic, e.value(), key=e.key.encode(), headers=e.headers()) for e in envs]
    await asyncio.gather(*futs)


async def run_until(runner: ConsumerRunner, done: Callable[[], bool], timeout: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def effects(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {r[0]: r[1] for r in await conn.execute(sa.select(EFFECTS.c.share_id, EFFECTS.c.n))}


async def test_consumer_applies_each_event_once_despite_duplicates(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await new_topic(partitions=3)
    envs = [new_event("/test", "t-dup", share(i, employee=f"e{i % 7}")) for i in range(200)]
    # every event twice, every tenth three times
    await produce(producer, topic, envs + envs + envs[::10])
    handler = Recorder()
    group = f"g-{topic}"
    await ensure_topics(broker.bootstrap, [topics.dead_letter(group)], 1)
    runner = ConsumerRunner(
        ConsumerSpec(group, (topic,), handler),
        service="test",
        bootstrap=broker.bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: producer,
    )
    await run_until(runner, lambda: runner.applied + runner.duplicates >= 420)
    got = await effects(engine)
    assert len(got) == 200 and set(got.values()) == {1}
    assert runner.applied == 200 and runner.duplicates == 220

    # a new runner in the same group resumes from committed offsets: nothing is applied again
    again = ConsumerRunner(
        ConsumerSpec(group, (topic,), handler),
        service="test",
        bootstrap=broker.bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: producer,
    )
    await produce(producer, topic, envs[:1])  # one more redelivery of an applied event
    await run_until(again, lambda: again.duplicates >= 1)
    assert again.applied == 0
    assert (await effects(engine)) == got


async def test_poisoned_and_malformed_records_go_to_the_dead_letter_topic(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await new_topic(partitions=1)
    group = f"g-{topic}"
    dlq = topics.dead_letter(group)
    await ensure_topics(broker.bootstrap, [dlq], 1)
    envs = [new_event("/test", "t-dlq", share(i)) for i in range(20)]
    await produce(producer, topic, envs[:10])
    await (await producer.send(topic, b"{garbage", key=b"k", headers=[("ce_type", b"io.advocacy.share.created.v1")]))
    await produce(producer, topic, envs[10:])
    handler = Recorder(poison={"s13"})
    runner = ConsumerRunner(
        ConsumerSpec(group, (topic,), handler),
        service="test",
        bootstrap=broker.bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: producer,
    )
    await run_until(runner, lambda: runner.applied >= 19 and runner.dead_lettered >= 2)
    got = await effects(engine)
    assert set(got) == {f"s{i}" for i in range(20)} - {"s13"}
    dead = await read_topic(broker.bootstrap, dlq, 2)
    reasons = {dict(r.headers)["dlq_original_offset"].decode(): dict(r.headers)["dlq_error"].decode() for r in dead}
    assert reasons["10"].startswith("missing header ce_id")
    assert "cannot apply s13" in reasons["14"]
    assert all(dict(r.headers)["dlq_original_topic"].decode() == topic for r in dead)


async def test_a_dead_letter_whose_publish_fails_is_dead_lettered_on_redelivery(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await new_topic(partitions=1)
    group = f"g-{topic}"
    dlq = topics.dead_letter(group)
    await ensure_topics(broker.bootstrap, [dlq], 1)
    await produce(producer, topic, [new_event("/test", "t-dlq-retry", share(i)) for i in range(5)])
    asked = 0

    def first_none() -> AIOKafkaProducer | None:
        """The producer is unavailable the first time a dead letter is sent (a broker blip)."""
        nonlocal asked
        asked += 1
        return None if asked == 1 else producer

    runner = ConsumerRunner(
        ConsumerSpec(group, (topic,), Recorder(poison={"s3"})),
        service="test",
        bootstrap=broker.bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=first_none,
    )
    await run_until(runner, lambda: runner.dead_lettered >= 1 and runner.applied >= 4)
    assert asked >= 2  # the first publish failed, the batch went again
    assert set(await effects(engine)) == {"s0", "s1", "s2", "s4"}
    (dead,) = await read_topic(broker.bootstrap, dlq, 1)
    assert "cannot apply s3" in dict(dead.headers)["dlq_error"].decode()


# -- parking: a row the broker will never take -------------------------------------------------------
async def _tenant_records(bootstrap: str, tenant: str, want: int, timeout: float = 15) -> list[str]:
    """The ce_ids of ``tenant``'s records on the shares topic, once ``want`` of them are there."""
    consumer = AIOKafkaConsumer(topics.SHARES, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    ids: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while len(ids) < want:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    ids += [
                        dict(r.headers)["ce_id"].decode()
                        for r in recs
                        if dict(r.headers)["ce_tenantid"] == tenant.encode()
                    ]
    finally:
        await consumer.stop()
    return ids


async def test_a_refused_row_is_parked_and_holds_back_its_key_alone(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any
) -> None:
    await ensure_topics(broker.bootstrap, [topics.SHARES], 6)
    tenant = f"t-park-{id(engine)}"
    big, behind, other = (
        new_event("/test", tenant, share(i, emp)) for i, emp in ((1, "big"), (2, "big"), (3, "other"))
    )
    async with make_sessionmaker(engine)() as s, s.begin():
        await add_events(s, [big])
        # a row written before events were bounded: larger than the producer's 1 MiB request limit
        await s.execute(sa.update(OUTBOX).where(OUTBOX.c.event_id == big.id).values(value=b"x" * (2 << 20)))
        await add_events(s, [behind, other])
    relay = OutboxRelay(engine, lambda: producer, service="park-test")
    assert await relay.publish_batch(producer) == 3
    assert relay.parked == 1 and relay.published == 1  # big parked, other sent, behind held (same key)
    (parked,) = await parked_rows(engine)
    assert parked["key"] == big.key and parked["waiting"] == 1 and "MessageSizeTooLarge" in parked["park_reason"]
    assert await relay.publish_batch(producer) == 0  # the key stays held, nothing else is waiting
    assert await _tenant_records(broker.bootstrap, tenant, 1) == [other.id]

    assert await retry_parked(engine, [parked["id"]]) == 1  # back in line: refused again, parked again
    await relay.publish_batch(producer)
    assert relay.parked == 2 and [r["id"] for r in await parked_rows(engine)] == [parked["id"]]

    assert await discard_parked(engine, [parked["id"]]) == 1  # given up: the key's next row goes on
    assert await relay.publish_batch(producer) == 1
    assert await parked_rows(engine) == []
    # two keys, two partitions: no order between them
    assert sorted(await _tenant_records(broker.bootstrap, tenant, 2)) == sorted([other.id, behind.id])


async def test_an_event_too_large_to_publish_is_refused_when_written(engine: AsyncEngine) -> None:
    event = new_event("/test", "t-too-large", share(1, "e" * (MAX_EVENT_BYTES + 1)))
    with pytest.raises(EventTooLarge) as refused:
        async with make_sessionmaker(engine)() as s, s.begin():
            await add_events(s, [new_event("/test", "t-too-large", share(2)), event])
    assert refused.value.status_code == 422
    assert refused.value.details[0]["field"] == "employee_id"
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(OUTBOX)) == 0  # nothing written


async def test_a_stop_leaves_each_partition_at_its_lowest_unapplied_offset(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_topic: Callable[..., Awaitable[str]]
) -> None:
    """The consumer stops while a batch fetched ahead waits (its records not applied): every
    partition is sought back to its lowest unapplied offset, the one its last commit names, not
    left past the discarded records (seeking to the start of the batch in hand does not move the
    partitions only the batch ahead read)."""
    topic = await new_topic(partitions=3)
    await produce(producer, topic, [new_event("/test", "t-stop", share(i, employee=f"e{i % 9}")) for i in range(300)])
    group = f"g-{topic}"
    stop = asyncio.Event()

    class StopOnTheSecondBatch(Recorder):
        async def __call__(self, session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
            await super().__call__(session, events)
            if self.calls == 2:
                async with asyncio.timeout(10):  # the batch after this one has been fetched
                    while runner._ahead is None or not runner._ahead.done():
                        await asyncio.sleep(0.01)
                stop.set()

    runner = ConsumerRunner(
        ConsumerSpec(group, (topic,), StopOnTheSecondBatch(), fetch_ahead=True),
        service="test",
        bootstrap=broker.bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: producer,
        batch_max=20,
    )
    task = asyncio.create_task(runner.run(stop))
    async with asyncio.timeout(10):
        while runner.consumer is None:
            await asyncio.sleep(0.01)
    consumer = runner.consumer
    closing = consumer.stop
    positions: dict[Any, tuple[int, int]] = {}

    async def look_then_stop() -> None:
        for tp in consumer.assignment():
            positions[tp] = (await consumer.position(tp), await consumer.committed(tp) or 0)
        await closing()

    consumer.stop = look_then_stop
    await asyncio.wait_for(task, 30)
    assert 0 < runner.applied < 300 and len(positions) == 3
    assert {tp: position for tp, (position, _) in positions.items()} == {
        tp: committed for tp, (_, committed) in positions.items()
    }


async def test_a_batch_fetched_ahead_takes_what_arrived_after_it(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_topic: Callable[..., Awaitable[str]]
) -> None:
    """While a batch is applied, the fetch ahead returns with the first record that arrives (s1);
    a record that the client receives after that (s2) joins s1's batch when it starts, rather than
    waiting for the batch after it (the ``award_wait`` and ``verdict_wait`` of docs/latency-budget.md)."""
    topic = await new_topic(partitions=1)
    release = asyncio.Event()
    batches: list[list[str]] = []

    class Held(Recorder):
        async def __call__(self, session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
            await super().__call__(session, events)
            batches.append([e.data.share_id for e in events])
            if len(batches) == 1:
                await release.wait()

    runner = ConsumerRunner(
        ConsumerSpec(f"g-{topic}", (topic,), Held(), fetch_ahead=True, fetch_max_wait_ms=20),
        service="test",
        bootstrap=broker.bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: producer,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with asyncio.timeout(20):
            await produce(producer, topic, [new_event("/test", "t-top-up", share(0))])
            while not batches:  # s0's batch is being applied, and held
                await asyncio.sleep(0.01)
            await produce(producer, topic, [new_event("/test", "t-top-up", share(1))])
            while runner._ahead is None or not runner._ahead.done():  # the fetch ahead returned with s1
                await asyncio.sleep(0.01)
            await produce(producer, topic, [new_event("/test", "t-top-up", share(2))])
            assert runner.consumer is not None
            tp = next(iter(runner.consumer.assignment()))
            while (runner.consumer.highwater(tp) or 0) < 3:  # the client received s2
                await asyncio.sleep(0.01)
            release.set()
            while runner.applied < 3:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        release.set()
        await asyncio.wait_for(task, 10)
    assert batches == [["s0"], ["s1", "s2"]]
    assert set((await effects(engine)).values()) == {1}
