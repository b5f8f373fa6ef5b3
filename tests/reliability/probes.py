"""Looking at a consumer group from outside: its committed offsets, the log end, its lag, and the
rows its inbox holds (the effects it committed to its database)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from advocacy_dev.devstack.postgres import plain_url


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
        """Each partition's log end, from a fetch's high watermark. Not ``end_offsets``: Tansu
        answers ListOffsets(latest) with the last record batch's base offset + 1, short of the log's
        end by that batch's size less one (a consumer whose committed offset equals the real end
        would look beyond it, and one short of it caught up)."""
        assert self.consumer is not None
        listed = await asyncio.wait_for(self.consumer.end_offsets(self.partitions), 10)
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await asyncio.wait_for(reader.start(), 15)
        try:
            reader.assign(self.partitions)
            for tp in self.partitions:
                reader.seek(tp, listed[tp])
            deadline = time.monotonic() + 10
            while any(reader.highwater(tp) is None for tp in self.partitions):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no high watermark for {self.partitions}")
                await reader.getmany(timeout_ms=200, max_records=1)
            return {tp: int(reader.highwater(tp) or 0) for tp in self.partitions}
        finally:
            await reader.stop()

    async def lag(self) -> int:
        """Records between each committed offset and its log's end; an offset committed beyond the
        end (a log the broker lost) is not caught up either."""
        committed, ends = await self.committed(), await self.ends()
        return sum(abs(ends[tp] - committed.get(tp, 0)) for tp in self.partitions)

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


class InboxWatch:
    """One open connection to a service's database, to poll its inbox cheaply; with ``sql``, a count
    of other rows, one per record applied (metrics' clicks leave click facts, not inbox rows:
    docs/adr/0021-fact-keyed-events-skip-the-inbox.md)."""

    def __init__(self, database_url: str, group: str, sql: str | None = None) -> None:
        self.url = plain_url(database_url)
        self.group = group
        self.sql = sql
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> InboxWatch:
        self.conn = await asyncpg.connect(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def count(self) -> int:
        assert self.conn is not None
        if self.sql is not None:
            return int(await self.conn.fetchval(self.sql))
        return int(await self.conn.fetchval("SELECT count(*) FROM inbox WHERE source LIKE $1", f"{self.group} %"))

    async def wait_for_commit(self, timeout: float) -> bool:
        """Return as soon as a new batch is committed (the inbox grew), or False after ``timeout``."""
        before = await self.count()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.count() != before:
                return True
            await asyncio.sleep(0.003)
        return False


async def read_topic(
    bootstrap: str, topic: str, *, tenant: str | None = None, idle: float = 1.5, timeout: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` (of ``tenant``, by its ``ce_tenantid`` header), from the beginning,
    without a consumer group; stops after ``idle`` seconds without new records."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await asyncio.wait_for(consumer.start(), 15)
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < idle:
            batch = await consumer.getmany(timeout_ms=200)
            records = [r for recs in batch.values() for r in recs]
            if records:
                quiet_since = time.monotonic()
            for r in records:
                if tenant is None or header(r, "ce_tenantid") == tenant:
                    out.append(r)
    finally:
        await consumer.stop()
    return out


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for k, v in record.headers or ():
        if k == name:
            return v.decode(errors="replace")
    return None


async def explain_click_path(s: Any, tenant: str, groups: Sequence[str] = ("metrics", "gamification")) -> str:
    """Where the clicks of ``tenant`` are along the path, for a failure message: sharing's verdicts
    per employee, its unpublished outbox, each topic's partitions and log ends, each group's
    committed offsets, and metrics' click facts per employee."""
    from advocacy_common import topics
    from tests.reliability.s1_groups import GROUP_TOPICS

    lines: list[str] = []

    async def rows(svc: str, sql: str) -> list[Any]:
        conn = await asyncpg.connect(plain_url(s.database_url(svc)))
        try:
            return list(await conn.fetch(sql, tenant) if "$1" in sql else await conn.fetch(sql))
        finally:
            await conn.close()

    with contextlib.suppress(Exception):
        got = await rows(
            "sharing",
            "SELECT employee_id, verdict, count(*) FROM clicks WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        lines.append("sharing verdicts: " + ", ".join(f"{r[0]}:{r[1]}={r[2]}" for r in got))
        got = await rows("sharing", "SELECT topic, count(*) FROM outbox WHERE published_at IS NULL GROUP BY 1")
        lines.append("sharing outbox unpublished: " + repr({r[0]: r[1] for r in got}))
    with contextlib.suppress(Exception):
        got = await rows(
            "metrics",
            "SELECT employee_id, verdict, count(*) FROM click_facts WHERE tenant_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        lines.append("metrics click facts: " + ", ".join(f"{r[0]}:{r[1]}={r[2]}" for r in got))
    with contextlib.suppress(Exception):
        raw = await read_topic(s.bootstrap, topics.CLICKS_RAW, tenant=tenant)
        ids = {header(r, "ce_id") for r in raw}
        lines.append(f"{topics.CLICKS_RAW} of the tenant: {len(raw)} records, {len(ids)} distinct click ids")
    for group in (*groups, "sharing-clicks"):
        wanted = GROUP_TOPICS.get(group, (topics.CLICKS_RAW,))
        with contextlib.suppress(Exception):
            async with GroupProbe(s.bootstrap, group, wanted) as probe:
                ends, committed = await probe.ends(), await probe.committed()
                lines.append(
                    f"group {group}: "
                    + ", ".join(
                        f"{tp.topic}[{tp.partition}] {committed.get(tp, 0)}/{ends[tp]}" for tp in probe.partitions
                    )
                )
    return "\n".join(lines)


async def group_offsets(bootstrap: str, groups: dict[str, Sequence[str]]) -> dict[str, dict[str, str]]:
    """Each group's ``committed/end`` per partition (``topic[p]``), ends from a fetch's high watermark."""
    out: dict[str, dict[str, str]] = {}
    for group, wanted in groups.items():
        async with GroupProbe(bootstrap, group, wanted) as probe:
            ends, committed = await probe.ends(), await probe.committed()
            out[group] = {
                f"{tp.topic}[{tp.partition}]": f"{committed.get(tp, 0)}/{ends[tp]}" for tp in probe.partitions
            }
    return out
