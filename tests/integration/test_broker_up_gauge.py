"""``advocacy_broker_up`` (issue 15): the gauge the AdvocacyBrokerUnreachable alert reads was only
ever set to 1, so the alert could never fire. A worker whose broker is unreachable reports 0."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.migrations import upgrade
from advocacy_content.app import create_app
from advocacy_content.settings import ContentSettings
from advocacy_dev.devstack.net import free_port
from tests.support.traffic import scrape, total

pytestmark = pytest.mark.integration


async def test_a_worker_that_cannot_reach_the_broker_reports_it(new_database: str, dev_keys: DevKeys) -> None:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database)
    settings = ContentSettings(
        database_url=new_database,
        role="all",
        dev_mode=True,
        jwt_jwks_path=str(dev_keys.jwks_path),
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # nothing listens there
        log_json=False,
        log_level="CRITICAL",
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(15):
            while not server.started:
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["broker"] == "unreachable"
        samples = await scrape(base)
        assert [
            v for name, labels, v in samples if name == "advocacy_broker_up" and labels == {"service": "content"}
        ] == [0.0], total(samples, "advocacy_broker_up")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)
