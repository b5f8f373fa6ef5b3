"""Issue 13's erasure acceptances, end to end through HTTP and the partner topic:

- an erased employee's later share is refused (403 ``erased``), on the shared e2e stack;
- after a broker wipe and re-publication, the partner feed carries nothing about the erased person;
- (item 9) a person's data export assembles every service's part.
  A private stack on a broker of its own: alice shares and is erased while the broker is down, so her
  ``share.created`` (and what gamification makes of it) first reaches the broker after her erasure,
  when the services re-publish to the wiped broker. The partner topic then holds the erasure notice
  and bob's events, and nothing else naming alice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from advocacy_common import topics
from advocacy_common.auth.devkeys import DevKeys
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.person_export import SERVICES, ExportError, assemble
from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually
from tests.support.stackkit import PrivateStack, running_stack

ERASED = "io.advocacy.member.erased.v1"


async def test_an_erased_employees_later_share_is_refused(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.token(new_tenant, "boss", "admin")
    alice = stack.token(new_tenant, "alice", "employee", team="sales", name="Alice Secret")
    async with stack.client("content", admin) as content:
        first = (await content.post("/v1/content", json={"title": "One", "url": "https://example.com/1"})).json()
        second = (await content.post("/v1/content", json={"title": "Two", "url": "https://example.com/2"})).json()
        async with stack.client("sharing", alice) as sharing:

            async def shared() -> Any:
                r = await sharing.post("/v1/shares", json={"content_id": first["id"], "network": "linkedin"})
                return r.status_code == 201

            await eventually(shared, timeout=15, what="alice's first share")
            assert (await content.delete("/v1/members/alice")).status_code == 204

            async def refused() -> Any:
                r = await sharing.post("/v1/shares", json={"content_id": second["id"], "network": "linkedin"})
                assert r.status_code in (201, 403, 404), r.text
                return r if r.status_code == 403 else None

            r = await eventually(refused, timeout=15, what="a share after the erasure refused")
            assert r.json()["error"]["code"] == "erased"
            # the same again on the item she shared before: refused, not the old share handed back
            r = await sharing.post("/v1/shares", json={"content_id": first["id"], "network": "linkedin"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "erased"
    async with stack.client("sharing", admin) as sharing:
        r = await sharing.get("/v1/shares", params={"employee_id": "alice"})
        assert r.status_code == 200 and r.json()["items"] == []  # nothing new under her id


@pytest.fixture
def wipe_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "erasure-wipe",
        extra_env={"sharing": {"SHARING_BROKER_WATCH_SECONDS": "1"}},
        partitions=2,
    ) as s:
        yield s


async def _partner_events(bootstrap: str, tenant: str) -> list[dict[str, Any]]:
    """Everything the tenant's partner topic holds now: type and data of each record."""
    consumer = AIOKafkaConsumer(
        topics.partner_feed(tenant),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"partner-{tenant}-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        idle = 0
        while idle < 3:  # until three polls in a row bring nothing
            batch = await consumer.getmany(timeout_ms=300)
            recs = [r for rs in batch.values() for r in rs]
            idle = 0 if recs else idle + 1
            for r in recs:
                seen.append({"type": dict(r.headers)["ce_type"].decode(), "data": orjson.loads(r.value)})
    finally:
        await consumer.stop()
    return seen


async def test_after_a_broker_wipe_the_partner_feed_carries_nothing_about_the_erased_person(
    wipe_stack: PrivateStack, fresh_broker: TansuBroker
) -> None:
    s = wipe_stack
    tenant = f"wipe-{uuid.uuid4().hex[:8]}"
    admin = s.token(tenant, "boss", "admin")
    async with s.client("content", admin) as content:
        r = await content.post("/v1/content", json={"title": "News", "url": "https://example.com/n"})
        assert r.status_code == 201, r.text
        content_id = r.json()["id"]

        async def share(who: str) -> Any:
            token = s.token(tenant, who, "employee", team="sales", name=f"{who.title()} Secret")
            async with s.client("sharing", token) as sharing:
                r = await sharing.post("/v1/shares", json={"content_id": content_id, "network": "x"})
                return r.json() if r.status_code in (200, 201) else None

        # the pipeline works: carol's share reaches the partner topic before the outage
        await eventually(lambda: share("carol"), timeout=20, what="sharing knows the content")

        async def carol_forwarded() -> bool:
            return any(e["data"].get("employee_id") == "carol" for e in await _partner_events(s.bootstrap, tenant))

        await eventually(carol_forwarded, timeout=30, what="carol's share on the partner topic")

        fresh_broker.stop()  # Tansu keeps nothing: it comes back empty
        assert await share("alice") is not None  # accepted while the broker is away (outbox)
        assert (await content.delete("/v1/members/alice")).status_code == 204
        assert await share("bob") is not None
        fresh_broker.start()

    async def settled() -> list[dict[str, Any]] | None:
        events = await _partner_events(s.bootstrap, tenant)
        types = {(e["type"], e["data"].get("employee_id")) for e in events}
        done = {(ERASED, "alice"), ("io.advocacy.share.created.v1", "bob"), ("io.advocacy.points.awarded.v2", "bob")}
        return events if done <= types else None

    events = await eventually(settled, timeout=90, what="the erasure notice and bob's events, re-published")
    await asyncio.sleep(3)  # anything about alice still on its way has had its chance
    events = await _partner_events(s.bootstrap, tenant)
    about_alice = [e for e in events if "alice" in orjson.dumps(e["data"]).decode() and e["type"] != ERASED]
    assert about_alice == [], about_alice
    notice = [e["data"] for e in events if e["type"] == ERASED]
    assert [n["employee_id"] for n in notice] == ["alice"] and "erased_at" in notice[0]


async def test_a_persons_data_export_assembles_every_services_part(stack: E2EStack, new_tenant: str) -> None:
    """Issue 13 item 9: the four parts side by side (what ``advocacy export-person`` prints)."""
    admin = stack.token(new_tenant, "boss", "admin")
    dana = stack.token(new_tenant, "dana", "employee", team="ops", name="Dana Secret")
    async with stack.client("content", admin) as content:
        item = (await content.post("/v1/content", json={"title": "Export", "url": "https://example.com/e"})).json()
    async with stack.client("sharing", dana) as sharing:

        async def shared() -> Any:
            r = await sharing.post("/v1/shares", json={"content_id": item["id"], "network": "linkedin"})
            return r.json() if r.status_code == 201 else None

        share = await eventually(shared, timeout=15, what="dana's share")
    urls = {svc: stack.url(svc) for svc in SERVICES}

    async def complete() -> Any:
        doc = await asyncio.to_thread(assemble, urls, dana, "dana")
        s = doc["services"]
        ready = s["gamification"]["sections"]["ledger"]["items"] and s["metrics"]["sections"]["shares"]["items"]
        return doc if ready else None

    doc = await eventually(complete, timeout=30, what="points and metrics about dana")
    assert doc["employee_id"] == "dana" and doc["tenant_id"] == new_tenant
    assert sorted(doc["services"]) == sorted(SERVICES)
    parts = doc["services"]
    assert [s["id"] for s in parts["sharing"]["sections"]["shares"]["items"]] == [share["id"]]
    assert parts["sharing"]["sections"]["shares"]["items"][0]["employee_name"] == "Dana Secret"
    assert [s["share_id"] for s in parts["metrics"]["sections"]["shares"]["items"]] == [share["id"]]
    assert sum(e["points"] for e in parts["gamification"]["sections"]["ledger"]["items"]) == 10
    assert "membership" in parts["content"]["sections"]
    # another employee may not read dana's data
    other = stack.token(new_tenant, "erin", "employee")
    with pytest.raises(ExportError, match="403"):
        await asyncio.to_thread(assemble, urls, other, "dana")
