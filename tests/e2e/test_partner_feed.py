"""Issue 7 partner feed, end to end: a share and its counted click reach the tenant's partner
topic (ids only) and its webhook (signed), and the delivery log shows them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from advocacy_common import topics
from advocacy_common.partner_feed import verify_signature
from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually, send_clicks
from tests.support.webhooks import Receiver, serve


async def test_partner_topic_and_signed_webhooks(stack: E2EStack, new_tenant: str) -> None:
    receiver = Receiver()
    admin = stack.token(new_tenant, "boss", "admin")
    async with serve(receiver) as url, stack.client("content", admin) as content:
        r = await content.put("/v1/tenant/settings", json={"partner_webhook_url": url})
        assert r.status_code == 200, r.text
        secret = (await content.post("/v1/partner/webhook-secret/rotate")).json()["secret"]
        r = await content.post("/v1/content", json={"title": "Partner news", "url": "https://example.com/p"})
        content_id = r.json()["id"]

        async with stack.client(
            "sharing", stack.token(new_tenant, "alice", "employee", name="Alice Secret")
        ) as sharing:

            async def share() -> Any:
                r = await sharing.post("/v1/shares", json={"content_id": content_id, "network": "x"})
                return r.json() if r.status_code == 201 else None

            code = (await eventually(share, timeout=15, what="share accepted"))["code"]
        assert (await send_clicks(stack.url("sharing"), [(code, 1), (code, 2)])) == [302, 302]

        def received_types() -> list[str]:
            return sorted(orjson.loads(body)["type"] for _, body in receiver.received)

        async def all_delivered() -> bool:
            return (
                received_types().count("io.advocacy.share.clicked.v1") == 2
                and "io.advocacy.share.created.v1" in received_types()
            )

        await eventually(all_delivered, timeout=30, what="webhooks delivered")
        for headers, body in receiver.received:
            assert verify_signature(
                secret, int(headers["x-advocacy-timestamp"]), body, headers["x-advocacy-signature"], now=time.time()
            )
            event = orjson.loads(body)
            assert event["tenantid"] == new_tenant
            assert "employee_name" not in event["data"] and "visitor" not in event["data"]

        async def logged() -> Any:
            r = await content.get("/v1/partner/webhook-deliveries", params={"status": "delivered"})
            items = r.json()["items"]
            return items if len(items) >= 3 else None

        log = await eventually(logged, timeout=10, what="delivery log")
        assert all(i["attempts"] == 1 and i["last_status_code"] == 204 for i in log)

    async with stack.client("content", stack.token(new_tenant, "eve", "employee")) as employee:
        assert (await employee.get("/v1/partner/webhook-deliveries")).status_code == 403

    consumer = AIOKafkaConsumer(
        topics.partner_feed(new_tenant), bootstrap_servers=stack.broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(15):
            while sum(1 for s in seen if "click_id" in s) < 2:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    seen += [orjson.loads(r.value) for r in recs]
    finally:
        await consumer.stop()
    assert all("employee_name" not in s for s in seen)
