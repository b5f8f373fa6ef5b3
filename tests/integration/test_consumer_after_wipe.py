"""A consumer never skips what is re-published after the broker lost its log (issue 22).

Tansu keeps nothing across a restart, and answers a fetch past the end of the (new, shorter) log
with an empty batch instead of ``OFFSET_OUT_OF_RANGE``, so ``auto_offset_reset`` never fires: a
consumer that kept its position (or finds its committed offset) beyond the new log's end must
rewind by itself, or it waits there while the outboxes and the click journal refill the log from
0 and then reads on from its old position, skipping everything below it. Each test puts a consumer
at position N on a real broker, wipes the broker and re-publishes fewer than N records (or, for the
topic watch, more than N before the consumer looks again), and wants every record applied.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from advocacy_common import topics
from advocacy_common.consumer import ConsumerRunner, ConsumerSpec
from advocacy_common.db import add_messaging_tables, make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.kafka import ensure_topics, make_producer
from advocacy_common.settings import ServiceSettings
from advocacy_common.topicwatch import check_once
from advocacy_dev.devstack.broker import TansuBroker

BEFORE = 400  # records the consumer has applied before the wipe: its position
AFTER = 150  # re-published after it: fewer than BEFORE, so they all lie below the old position


@pytest.fixture
async def engine(new_database: str) -> AsyncIterator[AsyncEngine]:
    meta = sa.MetaData()
    add_messaging_tables(meta)
    eng = make_engine(new_database)
    async with eng.begin() as conn:
        await conn.run_sync(meta.create_all)
    yield eng
    await eng.dispose()


class Applied:
    """The handler: remembers the share ids it applied; ``gate`` (when set) holds a batch back."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    async def __call__(self, session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        self.ids.extend(e.data.share_id for e in events)


def events(prefix: str, n: int) -> list[Envelope[Any]]:
    now = datetime.now(UTC)
    return [
        new_event(
            "/test",
            "t-wipe",
            ShareCreated(
                share_id=f"{prefix}{i}", employee_id="e", content_id="c", network="x", code=f"k{i:08d}", created_at=now
            ),
        )
        for i in range(n)
    ]


async def produce(bootstrap: str, topic: str, envs: Sequence[Envelope[Any]]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        futs = [await producer.send(topic, e.value(), key=e.key.encode(), headers=e.headers()) for e in envs]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running(runner: ConsumerRunner) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


async def until(done: Any, what: str, timeout: float = 30) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Setup:
    def __init__(self, broker: TansuBroker, engine: AsyncEngine, name: str) -> None:
        self.broker = broker
        self.engine = engine
        self.topic = f"test.wipe.{name}"
        self.group = f"g-wipe-{name}"
        self.handler = Applied()
        self.producer: AIOKafkaProducer | None = None

    async def topics(self) -> None:
        await ensure_topics(self.broker.bootstrap, [self.topic, topics.dead_letter(self.group)], 1)

    def runner(self) -> ConsumerRunner:
        return ConsumerRunner(
            ConsumerSpec(self.group, (self.topic,), self.handler),
            service="test",
            bootstrap=self.broker.bootstrap,
            sessionmaker=make_sessionmaker(self.engine),
            producer=lambda: self.producer,
        )

    async def wipe(self) -> None:
        """The broker comes back empty after an outage of a few seconds; the topics are recreated."""
        self.broker.stop()
        await asyncio.sleep(3)
        self.broker.start()
        await self.topics()


async def test_a_running_consumer_rewinds_when_its_position_is_past_the_new_log_end(
    fresh_broker: TansuBroker, engine: AsyncEngine
) -> None:
    s = Setup(fresh_broker, engine, "running")
    await s.topics()
    await produce(fresh_broker.bootstrap, s.topic, events("a", BEFORE))
    runner = s.runner()
    async with running(runner):
        await until(lambda: runner.applied == BEFORE, "the first records")
        await s.wipe()
        await produce(fresh_broker.bootstrap, s.topic, events("b", AFTER))
        await until(lambda: runner.applied >= BEFORE + AFTER, f"the {AFTER} re-published records")
    assert sorted(s.handler.ids) == sorted(f"a{i}" for i in range(BEFORE)) + sorted(f"b{i}" for i in range(AFTER))


async def test_a_committed_offset_past_the_new_log_end_is_not_trusted(
    fresh_broker: TansuBroker, engine: AsyncEngine
) -> None:
    """The group's offset was committed to the new broker beyond its log (a batch in hand when the
    broker went away commits once it is back): a consumer that joins reads the log from the start."""
    s = Setup(fresh_broker, engine, "committed")
    await s.topics()
    await produce(fresh_broker.bootstrap, s.topic, events("b", AFTER))
    tp = TopicPartition(s.topic, 0)
    stale = AIOKafkaConsumer(bootstrap_servers=fresh_broker.bootstrap, group_id=s.group, enable_auto_commit=False)
    await stale.start()
    try:
        stale.assign([tp])
        await stale.commit({tp: OffsetAndMetadata(BEFORE, "")})
    finally:
        await stale.stop()
    runner = s.runner()
    async with running(runner):
        await until(lambda: runner.applied >= AFTER, f"the {AFTER} records below the committed offset")
    assert sorted(s.handler.ids) == sorted(f"b{i}" for i in range(AFTER))


async def test_the_topic_watch_rewinds_every_consumer_after_a_wipe(
    fresh_broker: TansuBroker, engine: AsyncEngine
) -> None:
    """The log refills past the consumer's old position before it fetches again (its batch in hand
    took long): nothing in the fetch says so. The topic watch's canary does, and it rewinds every
    consumer of the process."""
    s = Setup(fresh_broker, engine, "watch")
    await s.topics()
    await produce(fresh_broker.bootstrap, s.topic, events("a", BEFORE))
    runner = s.runner()
    refill = BEFORE + AFTER  # more than the old position
    settings = ServiceSettings(
        kafka_bootstrap_servers=fresh_broker.bootstrap, kafka_topic_partitions=1, dev_mode=True, database_url=""
    )
    runtime: Any = SimpleNamespace(
        settings=settings, consumers=[runner], relay=None, definition=SimpleNamespace(on_broker_wiped=None)
    )
    await ensure_topics(fresh_broker.bootstrap, topics.ALL_TOPICS, 1)
    async with running(runner):
        await until(lambda: runner.applied == BEFORE, "the first records")
        s.handler.gate = asyncio.Event()
        await produce(fresh_broker.bootstrap, s.topic, events("late", 1))
        await until(s.handler.waiting.is_set, "the held batch")
        fresh_broker.stop()
        await asyncio.sleep(3)
        fresh_broker.start()  # empty: the canary (the group's dead-letter topic) is gone too
        await ensure_topics(fresh_broker.bootstrap, [s.topic], 1)
        await produce(fresh_broker.bootstrap, s.topic, events("b", refill))
        assert await check_once(runtime) is True
        s.handler.gate.set()
        s.handler.gate = None
        await until(lambda: runner.applied >= BEFORE + 1 + refill, f"the {refill} re-published records")
    assert sorted(s.handler.ids) == sorted(
        [*(f"a{i}" for i in range(BEFORE)), "late0", *(f"b{i}" for i in range(refill))]
    )
