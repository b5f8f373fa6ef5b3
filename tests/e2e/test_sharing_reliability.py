"""Issue 4 acceptance: no click that got its 302 is lost, none is counted twice.

Each test runs its own small stack (sharing and metrics as real processes, their own databases) on a
broker of its own (``fresh_broker``), so stopping the broker or the sharing process touches no other
test. Content is announced by publishing ``content.published`` straight to the broker.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from advocacy_common.auth.devkeys import DevKeys, mint_token
from advocacy_common.events import new_event
from advocacy_common.events.content import ContentPublished
from advocacy_common.kafka import make_producer
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.stack import ProcessStack
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, visitor_ip


@pytest.fixture
def mini_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[ProcessStack]:
    tag = uuid.uuid4().hex[:8]
    stack = ProcessStack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        jwks_path=dev_keys.jwks_path,
        data_dir=tmp_path / "stack",
        ports={"sharing": free_port(), "metrics": free_port()},
        database_names={"sharing": f"rel_sharing_{tag}", "metrics": f"rel_metrics_{tag}"},
        extra_env={"sharing": {"SHARING_BROKER_WATCH_SECONDS": "1"}},
    )
    try:
        stack.prepare(from_template=True)
        stack.start(timeout=60)
        yield stack
    finally:
        stack.stop()


async def publish_content(bootstrap: str, tenant: str, content_id: str) -> None:
    env = new_event(
        "/advocacy/content",
        tenant,
        ContentPublished(
            content_id=content_id,
            title="Reliable",
            url="https://example.com/r",
            slug="r",
            published_at=datetime.now(UTC),
        ),
    )
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await asyncio.wait_for(
            producer.send_and_wait(env.topic, env.value(), key=env.key.encode(), headers=env.headers()), 10
        )
    finally:
        await producer.stop()


async def make_share(stack: ProcessStack, keys: DevKeys, tenant: str) -> str:
    content_id = f"c-{uuid.uuid4().hex[:8]}"
    await publish_content(stack.bootstrap, tenant, content_id)
    token = mint_token(keys, tenant=tenant, sub="alice", roles=["employee"], team="sales", name="Alice")
    async with httpx.AsyncClient(base_url=stack.url("sharing"), headers={"Authorization": f"Bearer {token}"}) as c:

        async def attempt() -> str | None:
            r = await c.post("/v1/shares", json={"content_id": content_id, "network": "linkedin"})
            if r.status_code == 404:
                return None
            assert r.status_code == 201, r.text
            return str(r.json()["code"])

        code: str = await eventually(attempt, timeout=20, what="sharing learns the content")
        return code


async def counted(stack: ProcessStack, keys: DevKeys, tenant: str) -> int:
    token = mint_token(keys, tenant=tenant, sub="admin", roles=["admin"])
    async with httpx.AsyncClient(base_url=stack.url("metrics"), headers={"Authorization": f"Bearer {token}"}) as c:
        r = await c.get("/v1/metrics/employees/alice")
        assert r.status_code == 200, r.text
        return int(r.json()["clicks_by_verdict"]["counted"])


async def click(c: httpx.AsyncClient, code: str, i: int) -> int:
    try:
        r = await c.get(
            f"/r/{code}",
            headers={
                "X-Forwarded-For": visitor_ip(i),
                "User-Agent": BROWSER_UAS[i % len(BROWSER_UAS)],
                "Accept-Language": ACCEPT_LANGUAGE,
            },
        )
    except httpx.HTTPError:
        return 0
    return r.status_code


async def settle(stack: ProcessStack, keys: DevKeys, tenant: str, want: int, timeout: float) -> None:
    async def done() -> bool:
        return await counted(stack, keys, tenant) == want

    await eventually(done, timeout=timeout, interval=0.25, what=f"metrics counts {want} clicks")
    await asyncio.sleep(2)  # and nothing arrives twice later
    assert await counted(stack, keys, tenant) == want


async def test_broker_down_500_clicks_all_reach_metrics_exactly_once(
    mini_stack: ProcessStack, fresh_broker: TansuBroker, dev_keys: DevKeys, new_tenant: str
) -> None:
    code = await make_share(mini_stack, dev_keys, new_tenant)
    fresh_broker.stop()  # the embedded broker keeps nothing: it will come back empty
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=mini_stack.url("sharing"), timeout=10, limits=limits) as c:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> int:
            async with sem:
                return await click(c, code, i)

        statuses = await asyncio.gather(*(one(i) for i in range(500)))
    assert statuses.count(302) == 500  # redirects keep working without a broker
    fresh_broker.start()
    # sharing notices the lost log, recreates the topics and re-publishes its journal and outbox
    await settle(mini_stack, dev_keys, new_tenant, 500, timeout=45)


async def test_sigterm_under_200_clicks_a_second_loses_nothing(
    mini_stack: ProcessStack, dev_keys: DevKeys, new_tenant: str
) -> None:
    code = await make_share(mini_stack, dev_keys, new_tenant)
    sharing = mini_stack.process("sharing")
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    started = time.monotonic()
    next_id = 0

    def keep_sending() -> bool:
        # at least 6 s and 300 answered clicks (a busy machine answers fewer per second), at most 30 s
        elapsed = time.monotonic() - started
        return elapsed < 30 and (elapsed < 6 or statuses.count(302) < 300)

    async with httpx.AsyncClient(base_url=mini_stack.url("sharing"), timeout=5, limits=limits) as c:

        async def sender() -> None:
            nonlocal next_id
            while keep_sending():
                i = next_id
                next_id += 1
                statuses.append(await click(c, code, i))
                await asyncio.sleep(8 / 200)  # 8 senders: ~200 clicks/s

        async def restart() -> None:
            await asyncio.sleep(2)
            await asyncio.to_thread(sharing.terminate)  # SIGTERM: stop accepting, flush, exit
            await asyncio.to_thread(sharing.start)

        await asyncio.gather(restart(), *(sender() for _ in range(8)))
    await asyncio.to_thread(sharing.wait_ready, 60)
    answered = statuses.count(302)
    assert answered >= 300, f"only {answered} clicks answered"
    assert set(statuses) <= {302, 0, 503}, set(statuses)  # 0: refused while restarting
    await settle(mini_stack, dev_keys, new_tenant, answered, timeout=45)
