"""Topics after a broker wipe, on a real Tansu: nothing auto-creates them with the wrong partition
count, and a worker's topic watch recreates them and re-publishes its outbox (its own dead-letter
topic is the canary that tells a wiped broker from a missing topic)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from advocacy_common import topics
from advocacy_common.kafka import ensure_topics, make_producer
from advocacy_common.settings import ServiceSettings
from advocacy_common.topicwatch import check_once
from advocacy_dev.devstack.broker import TansuBroker


async def _partitions(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        described = await admin.describe_topics(names) if names else []
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()


async def test_our_clients_never_auto_create_a_topic(fresh_broker: TansuBroker) -> None:
    producer = make_producer(fresh_broker.bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=fresh_broker.bootstrap)
    await producer.start()
    await admin.start()
    try:
        # metadata requests for topics that do not exist: nothing is created on the way
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.describe_topics(["advocacy.test.absent-a"]), 3)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.send_and_wait("advocacy.test.absent-p", b"x"), 3)
        present = await _partitions(fresh_broker.bootstrap)
        assert "advocacy.test.absent-a" not in present and "advocacy.test.absent-p" not in present, present
    finally:
        await admin.close()
        await producer.stop()


class _Relay:
    def __init__(self) -> None:
        self.republished: list[datetime] = []

    async def republish_since(self, since: datetime) -> int:
        self.republished.append(since)
        return 7


async def test_watch_recreates_topics_and_republishes_after_a_wipe(fresh_broker: TansuBroker) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=fresh_broker.bootstrap, kafka_topic_partitions=3, dev_mode=True, database_url=""
    )
    relay = _Relay()
    wiped: list[Any] = []
    rewound: list[str] = []

    async def on_wiped(runtime: Any) -> None:
        wiped.append(runtime)

    runtime: Any = SimpleNamespace(
        settings=settings,
        consumers=[
            SimpleNamespace(spec=SimpleNamespace(group_id="watchtest"), rewind=lambda: rewound.append("watchtest"))
        ],
        relay=relay,
        definition=SimpleNamespace(on_broker_wiped=on_wiped),
    )
    canary = topics.dead_letter("watchtest")
    await ensure_topics(fresh_broker.bootstrap, [*topics.ALL_TOPICS, canary], 3)
    assert await check_once(runtime) is False and relay.republished == []

    fresh_broker.restart()  # memory storage: every topic is gone
    assert await check_once(runtime) is True
    present = await _partitions(fresh_broker.bootstrap)
    assert all(present.get(t) == 3 for t in [*topics.ALL_TOPICS, canary]), present
    assert len(relay.republished) == 1 and wiped == [runtime] and rewound == ["watchtest"]

    # a shared topic missing while the canary is there: recreated, but it is not a wipe
    assert await check_once(runtime) is False and len(relay.republished) == 1 and rewound == ["watchtest"]
