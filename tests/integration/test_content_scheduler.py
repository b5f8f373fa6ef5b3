"""The scheduler against one real database: several replicas racing publish and expire every item
exactly once, on time (counted in the outbox and on the real topic)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common import topics
from advocacy_common.db import OUTBOX, make_engine, make_sessionmaker
from advocacy_common.kafka import ensure_topics, make_producer
from advocacy_common.migrations import upgrade
from advocacy_common.outbox import OutboxRelay
from advocacy_content.adapters import scheduler
from advocacy_content.db import ContentItem

PUBLISHED = "io.advocacy.content.published.v1"
EXPIRED = "io.advocacy.content.expired.v1"


@pytest.fixture
async def content_db(new_database: str) -> str:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database)
    return new_database


@pytest.fixture
async def engines(content_db: str) -> AsyncIterator[list[AsyncEngine]]:
    """One engine per replica: separate connection pools, as separate processes would have."""
    engs = [make_engine(content_db, pool_size=4) for _ in range(3)]
    yield engs
    for e in engs:
        await e.dispose()


def item(tenant: str, publish_at: datetime, expires_at: datetime | None) -> ContentItem:
    at = datetime.now(UTC)
    return ContentItem(
        id=str(uuid.uuid4()),
        tenant_id=tenant,
        title="Scheduled",
        url="https://example.com/s",
        slug="scheduled",
        status="scheduled",
        publish_at=publish_at,
        expires_at=expires_at,
        created_by="admin",
        created_at=at,
        updated_at=at,
    )


async def outbox_counts(engine: AsyncEngine, tenant: str) -> Counter[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(OUTBOX.c.event_type, OUTBOX.c.key).where(OUTBOX.c.tenant_id == tenant))
        return Counter((r.event_type, r.key.split(":", 1)[1]) for r in rows)


async def test_racing_replicas_publish_and_expire_each_item_exactly_once(
    engines: list[AsyncEngine], broker: Any
) -> None:
    tenant = f"t-sched-{uuid.uuid4().hex[:8]}"
    n = 300
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    items = [item(tenant, due, due + timedelta(seconds=1) if i % 2 else None) for i in range(n)]
    async with make_sessionmaker(engines[0])() as s, s.begin():
        s.add_all(items)
    ids = {i.id for i in items}
    expiring = {i.id for i in items if i.expires_at is not None}

    stop = asyncio.Event()
    replicas = [
        asyncio.create_task(scheduler.run_scheduler(make_sessionmaker(e), stop, poll_seconds=0.02)) for e in engines
    ]
    # and a burst of passes started at the same instant on top of the loops
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    await asyncio.gather(*(scheduler.run_once(make_sessionmaker(engines[k % 3])) for k in range(8)))

    async def settled() -> bool:
        c = await outbox_counts(engines[0], tenant)
        return sum(v for (t, _), v in c.items() if t == PUBLISHED) >= n and sum(
            v for (t, _), v in c.items() if t == EXPIRED
        ) >= len(expiring)

    async with asyncio.timeout(15):
        while not await settled():
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # give a double publish the chance to show up
    stop.set()
    await asyncio.gather(*replicas)

    counts = await outbox_counts(engines[0], tenant)
    assert {cid for (t, cid) in counts if t == PUBLISHED} == ids
    assert {cid for (t, cid) in counts if t == EXPIRED} == expiring
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1][:5]

    async with engines[0].connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    ContentItem.__table__.c.status,
                    ContentItem.__table__.c.publish_at,
                    ContentItem.__table__.c.published_at,
                ).where(ContentItem.__table__.c.tenant_id == tenant)  # type: ignore[attr-defined]  # type: ignore[attr-defined]
            )
        ).all()
    statuses = Counter(r.status for r in rows)
    assert statuses == {"published": n - len(expiring), "expired": len(expiring)}
    # honoured to the second: published no earlier than asked, and well within a second after
    lateness = [(r.published_at - r.publish_at).total_seconds() for r in rows]
    assert min(lateness) >= 0
    assert max(lateness) < 1.0, max(lateness)

    # and on the topic: relay the outbox to the real broker, count this tenant's events
    await ensure_topics(broker.bootstrap, [topics.CONTENT], 6)
    producer = make_producer(broker.bootstrap)
    await producer.start()
    try:
        relay = OutboxRelay(engines[0], lambda: producer, service=f"content-test-{tenant}")
        while await relay.publish_batch(producer):
            pass
    finally:
        await producer.stop()
    on_topic = await read_tenant_events(broker.bootstrap, tenant, n + len(expiring))
    assert Counter(t for t, _ in on_topic) == {PUBLISHED: n, EXPIRED: len(expiring)}
    assert len(set(on_topic)) == len(on_topic)  # no content id published (or expired) twice


async def read_tenant_events(bootstrap: str, tenant: str, want: int) -> list[tuple[str, str]]:
    consumer = AIOKafkaConsumer(
        topics.CONTENT, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[str, str]] = []
    try:
        async with asyncio.timeout(20):
            while len(out) < want:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    for r in recs:
                        h = dict(r.headers)
                        if h["ce_tenantid"] == tenant.encode():
                            out.append((h["ce_type"].decode(), h["ce_subject"].decode()))
        # anything extra (a duplicate) would arrive right behind: read a little longer
        for recs in (await consumer.getmany(timeout_ms=500)).values():
            for r in recs:
                h = dict(r.headers)
                if h["ce_tenantid"] == tenant.encode():
                    out.append((h["ce_type"].decode(), h["ce_subject"].decode()))
    finally:
        await consumer.stop()
    return out


async def test_an_item_that_expired_before_its_publication_is_never_published(engines: list[AsyncEngine]) -> None:
    tenant = f"t-sched-{uuid.uuid4().hex[:8]}"
    past = datetime.now(UTC) - timedelta(minutes=5)
    late = item(tenant, past, past + timedelta(minutes=1))  # the worker was down the whole window
    async with make_sessionmaker(engines[0])() as s, s.begin():
        s.add(late)
    await scheduler.run_once(make_sessionmaker(engines[0]))
    assert await outbox_counts(engines[0], tenant) == {(EXPIRED, late.id): 1}
