"""Looking at a consumer group from outside: its committed offsets, the log end, its lag, and the
rows its inbox holds (the effects it committed to its database)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from advocacy_common.devstack.postgres import plain_url


class GroupProbe:
    """Committed offsets and log-end offsets of one consumer group (no group membership taken)."""

    def __init__(self, bootstrap: str, group: str, topics: Sequence[str]) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []

    async def __aenter__(self) -> GroupProbe:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False
        )
        await asyncio.wait_for(self.consumer.start(), 15)
        for t in self.topics:
            parts = self.consumer.partitions_for_topic(t)
            if parts is None:
                await self.consumer._client.force_metadata_update()
                parts = self.consumer.partitions_for_topic(t) or set()
            self.partitions += [TopicPartition(t, p) for p in sorted(parts)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    async def committed(self) -> dict[TopicPartition, int]:
        assert self.consumer is not None
        out = {}
        for tp in self.partitions:
            out[tp] = (await asyncio.wait_for(self.consumer.committed(tp), 10)) or 0
        return out

    async def ends(self) -> dict[TopicPartition, int]:
        assert self.consumer is not None
        return dict(await asyncio.wait_for(self.consumer.end_offsets(self.partitions), 10))

    async def lag(self) -> int:
        committed, ends = await self.committed(), await self.ends()
        return sum(max(0, ends[tp] - committed.get(tp, 0)) for tp in self.partitions)

    async def wait_lag_zero(self, timeout: float) -> float:
        """Seconds until the group's lag is zero; AssertionError with the last lag otherwise."""
        start = time.monotonic()
        last = -1
        while time.monotonic() - start < timeout:
            try:
                last = await self.lag()
            except Exception as e:  # the broker answering slowly while a group rebalances
                last = -1
                _ = e
            if last == 0:
                return time.monotonic() - start
            await asyncio.sleep(0.25)
        raise AssertionError(f"group {self.group}: lag {last} after {timeout}s")


async def inbox_count(database_url: str, group: str) -> int:
    """Events the group committed in its database (its inbox rows)."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbox WHERE source LIKE $1", f"{group} %"))
    finally:
        await conn.close()
