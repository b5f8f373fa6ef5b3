"""Webhooks isolated per endpoint (issue 12): a partner endpoint that trickles, answers a huge body or
never answers holds only its own deliveries. Real PostgreSQL, real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.db import make_engine
from advocacy_common.partner_feed import (
    MAX_ATTEMPTS,
    WEBHOOK_DELIVERIES,
    WebhookDeliverer,
    add_partner_feed_tables,
    lane_key,
)
from tests.support.helpers import eventually
from tests.support.webhooks import Misbehaving, Receiver, serve, serve_raw

META = sa.MetaData()
add_partner_feed_tables(META)
D = WEBHOOK_DELIVERIES
MiB = 1024 * 1024


@pytest.fixture
async def engine(new_database: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(new_database)
    async with eng.begin() as conn:
        await conn.run_sync(META.create_all)
    yield eng
    await eng.dispose()


async def secret(_: str) -> str:
    return "partner-secret"


async def queue(engine: AsyncEngine, tenant: str, url: str, n: int = 1, **extra: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(D),
            [
                {"tenant_id": tenant, "event_id": f"{url}#{i}", "event_type": "t", "url": url, "body": b"{}", **extra}
                for i in range(n)
            ],
        )


async def row_for(engine: AsyncEngine, url: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(D).where(D.c.url == url).order_by(D.c.id))).first()


@contextlib.asynccontextmanager
async def running(deliverer: WebhookDeliverer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_silent_endpoint_holds_only_its_own_deliveries(engine: AsyncEngine, new_tenant: str) -> None:
    silent, good = Misbehaving("hold"), Receiver()
    deliverer = WebhookDeliverer(engine, secret, allow_private=True, deadline=60)
    async with serve_raw(silent) as silent_url, serve(good) as good_url:
        await queue(engine, new_tenant + "-hostile", silent_url)  # older: first in line
        await queue(engine, new_tenant, good_url, n=3)
        async with running(deliverer):
            await asyncio.wait_for(silent.arrived.wait(), 30)
            # The silent endpoint has not answered, and will not until the good one got everything.
            await eventually(lambda: asyncio.sleep(0, len(good.received) == 3), timeout=30, what="good deliveries")
            assert silent.in_flight == 1 and not silent.hung_up.is_set()  # still waiting on it
            silent.release.set()

            async def silent_delivered() -> bool:
                return bool((await row_for(engine, silent_url)).status == "delivered")

            await eventually(silent_delivered, timeout=30, what="the silent endpoint's delivery")


async def test_a_trickling_endpoint_is_cut_at_the_total_deadline(engine: AsyncEngine, new_tenant: str) -> None:
    # One byte every 0.5 s: a per-phase read timeout (5 s before) never trips; the answer never ends.
    trickle, good = Misbehaving("trickle", interval=0.5), Receiver()
    deliverer = WebhookDeliverer(engine, secret, allow_private=True, deadline=1)
    async with serve_raw(trickle) as trickle_url, serve(good) as good_url:
        await queue(engine, new_tenant + "-hostile", trickle_url)
        await queue(engine, new_tenant, good_url)
        async with running(deliverer):
            await asyncio.wait_for(trickle.hung_up.wait(), 30)  # the client hung up, at 1 s
            await eventually(lambda: asyncio.sleep(0, len(good.received) == 1), timeout=30, what="good delivery")

            async def recorded() -> Any:
                row = await row_for(engine, trickle_url)
                return row if row.last_error else None

            row = await eventually(recorded, timeout=30, what="the trickle's outcome")
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "no complete answer within 1 s")


async def test_a_huge_answer_is_read_only_up_to_the_cap(engine: AsyncEngine, new_tenant: str) -> None:
    huge = Misbehaving("huge", size=1 << 30)  # 1 GiB
    deliverer = WebhookDeliverer(engine, secret, allow_private=True, max_response_bytes=64 * 1024)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    async with serve_raw(huge) as url:
        await queue(engine, new_tenant, url)
        assert await deliverer.deliver_due() == 1
        await asyncio.wait_for(huge.hung_up.wait(), 30)
    row = await row_for(engine, url)
    assert (row.status, row.last_status_code) == ("delivered", 200)
    # What left the server: the cap plus what loopback's socket buffers took before the hang-up.
    assert huge.sent < 32 * MiB, huge.sent
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 64 * 1024


async def test_the_attempt_is_counted_before_the_call_and_no_transaction_spans_it(
    engine: AsyncEngine, new_tenant: str
) -> None:
    held = Misbehaving("hold")
    deliverer = WebhookDeliverer(engine, secret, allow_private=True, deadline=60)
    async with serve_raw(held) as url:
        await queue(engine, new_tenant, url)
        async with running(deliverer):
            await asyncio.wait_for(held.arrived.wait(), 30)
            # A worker killed now has used up this attempt, and the delivery is leased, not lost.
            async with engine.connect() as conn:
                row = (await conn.execute(sa.select(D, (D.c.next_attempt_at > sa.func.now()).label("leased")))).one()
                open_transactions = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%'"
                    )
                )
            assert (row.status, row.attempts, row.leased) == ("pending", 1, True)
            assert open_transactions == 0
            held.release.set()

            async def delivered() -> bool:
                return bool((await row_for(engine, url)).status == "delivered")

            await eventually(delivered, timeout=30, what="delivery")
    assert (await row_for(engine, url)).attempts == 1


async def test_a_delivery_whose_worker_died_on_its_last_attempt_fails_instead_of_looping(
    engine: AsyncEngine, new_tenant: str
) -> None:
    held = Misbehaving("hold")
    async with serve_raw(held) as url:
        # Its last attempt was counted, then the worker died: the lease ran out with no outcome.
        await queue(engine, new_tenant, url, attempts=MAX_ATTEMPTS, last_error="HTTP 503")
        assert await WebhookDeliverer(engine, secret, allow_private=True).deliver_due() == 0
    row = await row_for(engine, url)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert held.requests == 0


async def test_one_endpoints_backlog_does_not_fill_the_claim(engine: AsyncEngine, new_tenant: str) -> None:
    # lanes are (tenant, endpoint) pairs; these rows go to each tenant's tenant-wide URL (endpoint "")
    hostile, good, late = (lane_key(t, "") for t in (new_tenant + "-hostile", new_tenant, new_tenant + "-late"))
    await queue(engine, new_tenant + "-hostile", "http://127.0.0.1:9/flood", n=40)  # due before the other's one
    await queue(engine, new_tenant, "http://127.0.0.1:9/good")
    deliverer = WebhookDeliverer(engine, secret, allow_private=True, per_endpoint=3, max_in_flight=4)
    claimed = await deliverer.claim()
    assert {tenant: len(rows) for tenant, rows in claimed.items()} == {hostile: 3, good: 1}
    assert [r.event_id for r in claimed[hostile]] == [f"http://127.0.0.1:9/flood#{i}" for i in range(3)]
    # An endpoint already being served gets nothing more until its lane is done.
    await queue(engine, new_tenant + "-late", "http://127.0.0.1:9/late")
    assert list(await deliverer.claim(busy=[hostile, good])) == [late]


async def test_a_worker_whose_lease_was_taken_over_sends_nothing(engine: AsyncEngine, new_tenant: str) -> None:
    receiver = Receiver()
    async with serve(receiver) as url:
        await queue(engine, new_tenant, url)
        late, fresh = (WebhookDeliverer(engine, secret, allow_private=True) for _ in range(2))
        (stale,) = (await late.claim()).values()
        async with engine.begin() as conn:  # its lease ran out (a long pause, a lost connection)
            await conn.execute(sa.update(D).values(next_attempt_at=sa.func.now() - sa.text("interval '1 second'")))
        (current,) = (await fresh.claim()).values()
        async with late.client() as client:
            await late._lane(client, stale, asyncio.Event())  # its token no longer matches: no call
        assert receiver.received == []
        async with fresh.client() as client:
            await fresh._lane(client, current, asyncio.Event())
    assert len(receiver.received) == 1
    row = await row_for(engine, url)
    assert (row.status, row.attempts) == ("delivered", 1)


async def test_stopping_gives_back_the_deliveries_not_yet_sent(engine: AsyncEngine, new_tenant: str) -> None:
    held = Misbehaving("hold")
    deliverer = WebhookDeliverer(
        engine, secret, allow_private=True, deadline=60, per_endpoint=3, parallel_per_endpoint=1
    )
    async with serve_raw(held) as url:
        await queue(engine, new_tenant, url, n=3)
        stop = asyncio.Event()
        task = asyncio.create_task(deliverer.run(stop))
        await asyncio.wait_for(held.arrived.wait(), 30)
        stop.set()  # the call under way may finish; the two behind it are not sent
        held.release.set()
        await asyncio.wait_for(task, 30)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(D.c.status, D.c.attempts, (D.c.next_attempt_at <= sa.func.now()).label("due")).order_by(
                    D.c.id
                )
            )
        ).all()
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 1), ("pending", 0), ("pending", 0)]
    assert rows[1].due and rows[2].due  # at once, not after their lease
    assert held.requests == 1


@pytest.mark.parametrize("bad", ["http://[zz]/hook", "http://[::1/hook", "http://a b/hook", "http://x:99999/hook"])
async def test_a_url_nothing_can_parse_fails_its_attempt_and_the_lane_goes_on(
    engine: AsyncEngine, new_tenant: str, bad: str
) -> None:
    receiver = Receiver()
    async with serve(receiver) as url:
        await queue(engine, new_tenant, bad)
        await queue(engine, new_tenant, url)  # same tenant, same lane, behind it
        assert await WebhookDeliverer(engine, secret, allow_private=True).deliver_due() == 2
    failed, delivered = await rows(engine)
    assert (failed.status, failed.attempts) == ("pending", 1) and failed.last_error
    assert delivered.status == "delivered" and len(receiver.received) == 1


async def rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(D).order_by(D.c.id))).all())
