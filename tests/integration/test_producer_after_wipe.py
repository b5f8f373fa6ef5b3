"""A producer that lost its broker writes nothing into a topic the returned broker does not list (issue 22).

Tansu comes back from a restart empty, yet takes produce requests for a topic it does not list; when
the topic is created afterwards its log mixes the two: records acknowledged before the creation
vanish and the sends after it fail or land at offsets continuing the old count. aiokafka sends on
the partition leaders it knew (and the batches it still holds from sends that timed out) as soon as
the broker answers again. ``make_producer`` forgets the leaders on a broken connection, so nothing
goes out until fresh metadata names the topic: the records wait in the sender's keeping (the click
journal, the outbox) and land once the topic is created, in a clean log.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from advocacy_common.kafka import ensure_topics, make_producer, missing_topics
from advocacy_dev.devstack.broker import TansuBroker

TOPIC = "test.producer.wipe"


async def send(producer: AIOKafkaProducer, tag: str, n: int, timeout: float = 3) -> bool:
    """One batch per partition, as the click sender does; True when every batch was acknowledged."""
    try:
        partitions = await asyncio.wait_for(producer.partitions_for(TOPIC), timeout)
        futures = []
        for p in sorted(partitions):
            batch = producer.create_batch()
            for i in range(n):
                batch.append(key=None, value=f"{tag}-{p}-{i}".encode(), timestamp=None)
            futures.append(await producer.send_batch(batch, TOPIC, partition=p))
        await asyncio.wait_for(asyncio.gather(*futures), timeout)
    except Exception:
        return False
    return True


async def read_all(bootstrap: str) -> list[tuple[int, int, str]]:
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[int, int, str]] = []
    try:
        quiet = time.monotonic()
        while time.monotonic() - quiet < 1.5:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                quiet = time.monotonic()
                out += [(r.partition, r.offset, (r.value or b"").decode()) for r in recs]
    finally:
        await consumer.stop()
    return sorted(out)


async def test_nothing_is_written_to_an_unlisted_topic_and_the_recreated_log_is_clean(
    fresh_broker: TansuBroker,
) -> None:
    await ensure_topics(fresh_broker.bootstrap, [TOPIC], 2)
    producer = make_producer(fresh_broker.bootstrap)
    await producer.start()
    try:
        assert await send(producer, "before", 3)
        fresh_broker.stop()
        outage = time.monotonic()
        while time.monotonic() - outage < 6:  # sends that time out on our side while the broker is away
            assert not await send(producer, "down", 3)
        fresh_broker.start()  # empty
        for _ in range(4):  # the broker answers, the topic is not there: nothing may be written
            assert not await send(producer, "back", 3)
            assert await missing_topics(fresh_broker.bootstrap, [TOPIC]) == [TOPIC]
        await ensure_topics(fresh_broker.bootstrap, [TOPIC], 2)
        deadline = time.monotonic() + 20
        while not await send(producer, "after", 3):
            assert time.monotonic() < deadline, "the producer never wrote to the recreated topic"
        assert await send(producer, "again", 2)
    finally:
        await producer.stop()
    got = await read_all(fresh_broker.bootstrap)
    # only what was sent after the creation, each record once, at offsets from 0 without a gap
    values = [v for _, _, v in got]
    assert not [v for v in values if not v.startswith(("after-", "again-"))], values
    assert sorted(values) == sorted({*values}), values
    for p in (0, 1):
        assert [o for part, o, _ in got if part == p] == list(range(5)), got
