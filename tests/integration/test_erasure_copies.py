"""Erasure reaches the copies the library keeps (issue 13), on the real database and broker: keyed
tombstones, the outbox and the webhook log scrubbed, the partner feed dropping events about erased
people; and, through sharing's API, a share by an erased person refused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common import erasure, topics
from advocacy_common.db import OUTBOX, add_messaging_tables, make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberErased, SuggestionApproved
from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict
from advocacy_common.kafka import make_producer
from advocacy_common.outbox import add_events
from advocacy_common.partner_feed import WEBHOOK_DELIVERIES, PartnerForwarder, add_partner_feed_tables
from advocacy_common.tombstones import ERASURES, SERVICE_SECRETS, Tombstones, add_tombstone_tables, legacy
from tests.support.helpers import eventually
from tests.support.sharing import Sharing

META = sa.MetaData()
add_messaging_tables(META)
add_partner_feed_tables(META)
add_tombstone_tables(META)
NOW = datetime.now(UTC)


def shared(who: str, n: int = 0) -> ShareCreated:
    return ShareCreated(
        share_id=f"s-{who}-{n}", employee_id=who, content_id="c1", network="x", code=f"{who}{n}",
        created_at=NOW, employee_name=f"{who.title()} Secret", team="sales", audience_size=3,
    )  # fmt: skip


def clicked(who: str) -> ShareClicked:
    return ShareClicked(
        click_id=f"k-{who}", share_id=f"s-{who}-0", code=f"{who}0", content_id="c1", employee_id=who, network="x",
        clicked_at=NOW, verdict=Verdict.counted, country="DE",
    )  # fmt: skip


def proposed_by(who: str) -> SuggestionApproved:
    return SuggestionApproved(
        content_id=f"c-{uuid.uuid4().hex[:6]}", proposer_id=who, approved_by="boss", approved_at=NOW
    )


@pytest.fixture
async def engine(new_database: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(new_database)
    async with eng.begin() as conn:
        await conn.run_sync(META.create_all)
        await conn.execute(sa.insert(SERVICE_SECRETS).values(name="pseudonym_key", value="stored-" + "k" * 40))
    yield eng
    await eng.dispose()


async def _waiting_for_a_lock(engine: AsyncEngine, pid: int) -> bool:
    """Whether the backend ``pid`` waits for an advisory lock (the erasure lock) right now."""
    async with engine.connect() as conn:
        return bool(
            await conn.scalar(
                sa.text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :p AND locktype = 'advisory' AND NOT granted)"
                ),
                {"p": pid},
            )
        )


async def test_a_write_racing_an_erasure_waits_for_it_and_sees_the_tombstone(
    engine: AsyncEngine, new_tenant: str
) -> None:
    """The e2e race (a share checked just before an erasure committed kept the name): a write's
    check that holds the person waits for an uncommitted erasure, then sees its tombstone."""
    stones, sm = Tombstones(), make_sessionmaker(engine)
    async with sm() as eraser, sm() as writer:
        await eraser.begin()
        assert await stones.add(eraser, new_tenant, "alice", NOW) is True
        await writer.begin()
        pid = int(await writer.scalar(sa.select(sa.func.pg_backend_pid())) or 0)
        held = asyncio.create_task(stones.hold(writer, new_tenant, "alice"))
        await eventually(lambda: _waiting_for_a_lock(engine, pid), timeout=30, what="the write waiting")
        assert not held.done()
        await eraser.commit()
        assert await asyncio.wait_for(held, 30) is True  # the tombstone, seen after the wait
        await writer.rollback()


async def test_an_erasure_waits_for_a_write_that_holds_the_person(engine: AsyncEngine, new_tenant: str) -> None:
    """The other order: a write that checked first commits before the erasure goes on (which then
    unlinks what the write made: the erasure's statements come after its wait)."""
    stones, sm = Tombstones(), make_sessionmaker(engine)
    async with sm() as eraser, sm() as writer:
        await writer.begin()
        assert await stones.hold(writer, new_tenant, "bob") is False
        await eraser.begin()
        pid = int(await eraser.scalar(sa.select(sa.func.pg_backend_pid())) or 0)
        erasing = asyncio.create_task(stones.add(eraser, new_tenant, "bob", NOW))
        await eventually(lambda: _waiting_for_a_lock(engine, pid), timeout=30, what="the erasure waiting")
        assert not erasing.done()
        await writer.commit()
        assert await asyncio.wait_for(erasing, 30) is True
        await eraser.commit()


async def test_tombstones_are_keyed_and_per_tenant(engine: AsyncEngine, new_tenant: str) -> None:
    stones = Tombstones()
    async with make_sessionmaker(engine)() as s, s.begin():
        assert await stones.add(s, new_tenant, "alice", NOW) is True
        assert await stones.add(s, new_tenant, "alice", NOW) is False  # erased once
        assert await stones.erased(s, [(new_tenant, "alice"), (new_tenant, "bob"), ("other", "alice")]) == {
            (new_tenant, "alice")
        }
        stored = (await s.execute(sa.select(ERASURES.c.employee_hash))).scalars().all()
    # keyed: neither the id nor the dictionary-reversible unkeyed hash is stored
    assert len(stored) == 1 and stored[0].startswith("k1:")
    assert "alice" not in stored[0] and stored[0] != legacy(new_tenant, "alice")
    other_key = Tombstones()
    other_key.configure("another-secret-" + "x" * 32)
    async with make_sessionmaker(engine)() as s:
        assert await other_key.erased(s, [(new_tenant, "alice")]) == set()  # found only under its key


async def test_outbox_and_webhook_log_forget_the_person(engine: AsyncEngine, new_tenant: str) -> None:
    t = new_tenant
    erased_event = new_event("/advocacy/content", t, MemberErased(employee_id="alice", erased_at=NOW))
    events: list[Envelope[Any]] = [
        new_event("/advocacy/sharing", t, shared("alice")),
        new_event("/advocacy/sharing", t, clicked("alice")),
        new_event("/advocacy/content", t, proposed_by("alice")),  # keyed by content, names her as proposer
        new_event("/advocacy/sharing", t, shared("bob")),
        new_event("/advocacy/sharing", t + "-other", shared("alice")),  # another tenant's alice
        erased_event,
    ]
    async with make_sessionmaker(engine)() as s, s.begin():
        await add_events(s, events)
        # one of them already published: kept for re-publication, it must go too
        await s.execute(sa.update(OUTBOX).where(OUTBOX.c.event_id == events[0].id).values(published_at=NOW))
        await s.execute(
            sa.insert(WEBHOOK_DELIVERIES),
            [
                {"tenant_id": t, "event_id": e.id, "event_type": e.type, "url": "https://p.example/h",
                 "body": orjson.dumps({"id": e.id, "type": e.type, "data": e.data.model_dump(mode="json")})}
                for e in (events[0], events[1], events[3], erased_event)
            ],
        )  # fmt: skip
    async with make_sessionmaker(engine)() as s, s.begin():
        assert await erasure.scrub_outbox(s, t, "alice") == 3
        assert await erasure.scrub_webhook_deliveries(s, t, "alice") == 2
    async with engine.connect() as conn:
        left = set((await conn.execute(sa.select(OUTBOX.c.event_id))).scalars())
        hooks = set((await conn.execute(sa.select(WEBHOOK_DELIVERIES.c.event_id))).scalars())
    assert left == {events[3].id, events[4].id, erased_event.id}
    assert hooks == {events[3].id, erased_event.id}


@pytest.fixture
async def producer(broker: Any) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(broker.bootstrap)
    await p.start()
    yield p
    await p.stop()


async def test_the_partner_feed_drops_events_about_erased_people(
    engine: AsyncEngine, producer: AIOKafkaProducer, broker: Any, new_tenant: str
) -> None:
    t = new_tenant
    stones = Tombstones()

    async def url_for(_: Any, tenant: str) -> str | None:
        return "https://partner.example/hook"

    forwarder = PartnerForwarder(
        lambda: producer, bootstrap=broker.bootstrap, webhook_url=url_for, erased=stones.erased
    )
    # made before the erasure, consumed after it (in flight, or re-published after a broker wipe)
    late: list[Envelope[Any]] = [
        new_event("/advocacy/sharing", t, shared("alice")),
        new_event("/advocacy/sharing", t, clicked("alice")),
        new_event("/advocacy/content", t, proposed_by("alice")),
        new_event("/advocacy/sharing", t, shared("bob")),
        new_event("/advocacy/content", t, MemberErased(employee_id="alice", erased_at=NOW)),
    ]
    async with make_sessionmaker(engine)() as s, s.begin():
        await stones.add(s, t, "alice", NOW)
    async with make_sessionmaker(engine)() as s, s.begin():
        await forwarder(s, late)
    consumer = AIOKafkaConsumer(
        topics.partner_feed(t), bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:
        async with asyncio.timeout(15):
            while len(got) < 2:
                for recs in (await consumer.getmany(timeout_ms=200)).values():
                    got += recs
        got += [r for recs in (await consumer.getmany(timeout_ms=500)).values() for r in recs]
    finally:
        await consumer.stop()
    assert sorted(dict(r.headers)["ce_type"].decode() for r in got) == [
        "io.advocacy.member.erased.v1",
        "io.advocacy.share.created.v1",
    ]
    assert [orjson.loads(r.value)["employee_id"] for r in got if b"share" in dict(r.headers)["ce_type"]] == ["bob"]
    async with engine.connect() as conn:
        queued = set((await conn.execute(sa.select(WEBHOOK_DELIVERIES.c.event_id))).scalars())
    assert queued == {late[3].id, late[4].id}


# -- through sharing's API ----------------------------------------------------------------------------
async def test_an_erased_person_cannot_share_again_and_their_outbox_rows_are_gone(sharing: Sharing) -> None:
    tenant, content = f"t-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    await sharing.publish_content(tenant, content)
    await sharing.share(tenant, "alice", content)
    await sharing.share(tenant, "bob", content)
    await sharing.publish(
        new_event("/advocacy/content", tenant, MemberErased(employee_id="alice", erased_at=datetime.now(UTC)))
    )
    deadline = asyncio.get_running_loop().time() + 15
    while not await sharing.scalar("select count(*) from erasures where tenant_id = :t", t=tenant):
        assert asyncio.get_running_loop().time() < deadline, "member.erased not applied"
        await asyncio.sleep(0.1)
    token = sharing.mint(tenant, "alice", "employee", team="sales", name="Alice")
    async with sharing.client(token) as c:
        r = await c.post("/v1/shares", json={"content_id": content, "network": "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "erased", r.text
    assert (
        await sharing.scalar("select count(*) from shares where tenant_id = :t and employee_id = 'alice'", t=tenant)
        == 0
    )
    rows = await sharing.rows("select key, convert_from(value, 'UTF8') as v from outbox where tenant_id = :t", t=tenant)
    assert not [r for r in rows if "alice" in r.key or "Alice" in r.v or '"alice"' in r.v]
    assert any('"bob"' in r.v for r in rows)  # nobody else's rows
    stone = await sharing.scalar("select employee_hash from erasures where tenant_id = :t", t=tenant)
    assert stone.startswith("k1:") and "alice" not in stone


# -- the data export (issue 13 item 9), through sharing's API -------------------------------------------
async def test_a_person_exports_what_sharing_holds_about_them_and_nobody_else_may(sharing: Sharing) -> None:
    tenant, content = f"t-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    await sharing.publish_content(tenant, content)
    share = await sharing.share(tenant, "alice", content, message="In my own words")
    await sharing.share(tenant, "bob", content)
    async with sharing.client(sharing.mint(tenant, "alice", "employee")) as c:
        await c.put("/v1/accounts/linkedin", json={"handle": "alice-in", "audience_size": 10})
        r = await c.get("/v1/data-export/sharing/alice")
        assert r.status_code == 200, r.text
        part = r.json()
        assert (await c.get("/v1/data-export/sharing/bob")).status_code == 403  # not hers
        assert (await c.get("/v1/data-export/sharing/" + "a" * 300)).status_code == 422  # bounded
    assert part["service"] == "sharing" and part["employee_id"] == "alice" and part["section_limit"] == 1000
    shares = part["sections"]["shares"]
    assert [s["id"] for s in shares["items"]] == [share["id"]] and shares["truncated"] is False
    assert shares["items"][0]["message"] == "In my own words" and "creator_visitor" not in shares["items"][0]
    assert [a["handle"] for a in part["sections"]["accounts"]["items"]] == ["alice-in"]
    async with sharing.client(sharing.mint(tenant, "boss", "admin")) as c:
        r = await c.get("/v1/data-export/sharing/alice")
    assert r.status_code == 200 and [s["id"] for s in r.json()["sections"]["shares"]["items"]] == [share["id"]]
    async with sharing.client(sharing.mint(tenant + "x", "boss", "admin")) as c:  # another tenant's admin
        r = await c.get("/v1/data-export/sharing/alice")
    assert r.status_code == 200 and r.json()["sections"]["shares"]["items"] == []


async def test_ids_with_quotes_and_accents_are_scrubbed_and_near_misses_are_not(
    engine: AsyncEngine, new_tenant: str
) -> None:
    odd = 'zoë "z" o\'neil\\x'
    events: list[Envelope[Any]] = [
        new_event("/advocacy/content", new_tenant, proposed_by(odd)),  # keyed by content: found in the payload
        new_event("/advocacy/content", new_tenant, proposed_by(odd + "2")),  # another person, a longer id
    ]
    async with make_sessionmaker(engine)() as s, s.begin():
        await add_events(s, events)
    async with make_sessionmaker(engine)() as s, s.begin():
        assert await erasure.scrub_outbox(s, new_tenant, odd) == 1
    async with engine.connect() as conn:
        assert set((await conn.execute(sa.select(OUTBOX.c.event_id))).scalars()) == {events[1].id}
