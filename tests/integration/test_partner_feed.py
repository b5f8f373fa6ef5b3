"""Partner feed against the real broker and database; webhooks to a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common import topics
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.kafka import make_producer
from advocacy_common.partner_feed import (
    WEBHOOK_DELIVERIES,
    PartnerForwarder,
    WebhookDeliverer,
    add_partner_feed_tables,
    verify_signature,
)
from tests.support.webhooks import Receiver, serve

META = sa.MetaData()
add_partner_feed_tables(META)


def click(i: int, verdict: Verdict) -> ShareClicked:
    return ShareClicked(
        click_id=f"k{i}", share_id="s", code="c", content_id="c1", employee_id="alice", network="x",
        clicked_at=datetime.now(UTC), verdict=verdict, country="DE",
    )  # fmt: skip


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


async def test_forwarder_sends_only_counted_clicks_to_the_tenant_topic_and_queues_webhooks(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_tenant: str
) -> None:
    async def url_for(_: Any, tenant: str) -> str | None:
        return "https://partner.example/hook" if tenant == new_tenant else None

    forwarder = PartnerForwarder(lambda: producer, bootstrap=broker.bootstrap, webhook_url=url_for)
    events = [
        new_event("/advocacy/sharing", new_tenant, click(i, Verdict.counted if i % 2 else Verdict.bot))
        for i in range(10)
    ]
    events.append(new_event("/advocacy/sharing", new_tenant + "-other", click(99, Verdict.counted)))
    async with make_sessionmaker(engine)() as s, s.begin():
        await forwarder(s, events)

    consumer = AIOKafkaConsumer(
        topics.partner_feed(new_tenant), bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(15):
            while len(got) < 5:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    got += recs
    finally:
        await consumer.stop()
    assert sorted(orjson.loads(r.value)["click_id"] for r in got) == ["k1", "k3", "k5", "k7", "k9"]
    assert all("country" not in orjson.loads(r.value) for r in got)
    assert {dict(r.headers)["ce_id"].decode() for r in got} == {e.id for e in events[1:10:2]}
    async with engine.connect() as conn:
        queued = (await conn.execute(sa.select(WEBHOOK_DELIVERIES.c.tenant_id, WEBHOOK_DELIVERIES.c.status))).all()
    assert queued == [(new_tenant, "pending")] * 5


async def test_webhooks_are_signed_retried_and_logged(engine: AsyncEngine, new_tenant: str) -> None:
    receiver = Receiver(fail_first=1)
    async with serve(receiver) as url:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(WEBHOOK_DELIVERIES),
                [{"tenant_id": new_tenant, "event_id": "e1", "event_type": "t", "url": url, "body": b'{"id":"e1"}'}],
            )

        async def secret(_: str) -> str:
            return "partner-secret"

        deliverer = WebhookDeliverer(engine, secret, allow_private=True)
        assert await deliverer.deliver_due() == 1  # first attempt: 503
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(WEBHOOK_DELIVERIES))).one()
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
        assert await deliverer.deliver_due() == 0  # not due yet (backoff)
        async with engine.begin() as conn:
            await conn.execute(sa.update(WEBHOOK_DELIVERIES).values(next_attempt_at=sa.func.now()))
        assert await deliverer.deliver_due() == 1
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(WEBHOOK_DELIVERIES))).one()
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 204)
    headers, body = receiver.received[-1]
    assert body == b'{"id":"e1"}'
    ts = int(headers["x-advocacy-timestamp"])
    assert verify_signature("partner-secret", ts, body, headers["x-advocacy-signature"], now=time.time())


async def test_private_webhook_targets_are_refused_in_production_mode(engine: AsyncEngine, new_tenant: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(WEBHOOK_DELIVERIES),
            [
                {
                    "tenant_id": new_tenant,
                    "event_id": "e1",
                    "event_type": "t",
                    "url": "http://169.254.169.254/latest",
                    "body": b"{}",
                }
            ],
        )

    async def secret(_: str) -> str:
        return "s"

    await WebhookDeliverer(engine, secret).deliver_due()
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(WEBHOOK_DELIVERIES))).one()
    assert row.status == "pending" and row.last_error.startswith("refused")
