"""The sharing service in the test's process, for integration tests (the ``sharing`` fixture of
tests/integration/conftest.py): ``running_sharing`` starts it on a database and broker and yields a
``Sharing`` handle. Then clicks through it: a link to click, a click as a browser sends it, the
redirect's injected clock (``clock``), a tenant's click allow-list, and the verdict rows the worker
wrote.

A test module that takes the ``clock`` fixture imports it by name (pytest finds fixtures in the
module's namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import ContentPublished, TenantSettingsUpdated
from advocacy_common.migrations import upgrade
from advocacy_common.runtime import Runtime
from advocacy_common.tenant import ClickAllowList, TenantSettings
from advocacy_sharing.app import create_app
from advocacy_sharing.settings import SharingSettings
from tests.support.helpers import ACCEPT_LANGUAGE, in_process


@dataclass
class FakeClock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sharing:
    app: Any
    runtime: Runtime
    engine: AsyncEngine
    producer: AIOKafkaProducer
    mint: Callable[..., str]
    bootstrap: str

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        h = {"Authorization": f"Bearer {token}"} if token else {}
        h.update(headers)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://sharing.test", headers=h, timeout=10
        )

    async def publish(self, env: Envelope[Any]) -> None:
        await asyncio.wait_for(
            self.producer.send_and_wait(env.topic, env.value(), key=env.key.encode(), headers=env.headers()), 10
        )

    async def publish_content(self, tenant: str, content_id: str, url: str = "https://example.com/post?ref=a") -> None:
        await self.publish(
            new_event(
                "/advocacy/content",
                tenant,
                ContentPublished(
                    content_id=content_id,
                    title="A post",
                    url=url,
                    slug="a-post",
                    published_at=datetime.now(UTC),
                ),
            )
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())

    async def verdicts(self, code: str) -> dict[str, int]:
        rows = await self.rows("select verdict, count(*) from clicks where code = :c group by verdict", c=code)
        return {r[0]: r[1] for r in rows}

    async def wait_clicks(self, code: str, n: int, timeout: float = 20) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            got = await self.verdicts(code)
            if sum(got.values()) >= n or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)

    async def share(
        self, tenant: str, sub: str, content_id: str, network: str = "linkedin", **kw: Any
    ) -> dict[str, Any]:
        token = self.mint(tenant, sub, "employee", team="sales", name=sub.title())
        async with self.client(token, **kw.pop("headers", {})) as c:
            deadline = time.monotonic() + 15
            while True:
                r = await c.post("/v1/shares", json={"content_id": content_id, "network": network, **kw})
                if r.status_code != 404 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)  # sharing has not consumed content.published yet
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


@contextlib.asynccontextmanager
async def running_sharing(
    database_url: str, bootstrap: str, jwks_path: Path, spool: Path, mint: Callable[..., str], **overrides: Any
) -> AsyncIterator[Sharing]:
    await asyncio.to_thread(upgrade, "advocacy_sharing", database_url)
    settings = SharingSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        dev_mode=True,
        jwt_jwks_path=str(jwks_path),
        spool_dir=str(spool),
        log_json=False,
        log_level="WARNING",
        kafka_topic_partitions=2,
        **overrides,
    )
    app = create_app(settings)
    async with in_process(app, "sharing", bootstrap, database_url) as (runtime, producer, engine):
        yield Sharing(app, runtime, engine, producer, mint, bootstrap)


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
# How long sharing may take to copy a tenant's settings from the broker: a bound under load.
SETTINGS_TIMEOUT = 10


@pytest.fixture
def clock(sharing: Sharing) -> Iterator[FakeClock]:
    """The redirect's clock, faked for the test (the worker judges by the time the redirect recorded)."""
    parts: Any = sharing.runtime.parts
    redirector = parts.redirector
    fake = FakeClock()
    redirector.clock = fake
    yield fake
    redirector.clock = time.time


async def new_link(sharing: Sharing, tenant: str | None = None, sub: str = "alice", **kw: Any) -> dict[str, Any]:
    """A share of fresh content by ``sub`` (of a fresh tenant unless given); ``["tenant"]`` says whose."""
    tenant = tenant or f"t-{uuid.uuid4().hex[:8]}"
    content_id = f"c-{uuid.uuid4().hex[:8]}"
    await sharing.publish_content(tenant, content_id)
    share = await sharing.share(tenant, sub, content_id, **kw)
    share["tenant"] = tenant
    return share


async def hit(
    sharing: Sharing,
    code: str,
    *,
    ip: str = "198.18.0.1",
    ua: str = CHROME,
    method: str = "GET",
    language: str | None = ACCEPT_LANGUAGE,
    **h: str,
) -> Any:
    """A click as a browser sends it (Accept-Language included unless ``language`` is None)."""
    lang = {"Accept-Language": language} if language is not None else {}
    async with sharing.client(**{"X-Forwarded-For": ip, "User-Agent": ua, **lang, **h}) as c:
        return await c.request(method, f"/r/{code}")


async def allow_clicks(sharing: Sharing, tenant: str, allow: ClickAllowList) -> None:
    """Content's settings event with the tenant's click allow-list; returns once sharing has its copy."""
    await sharing.publish(
        new_event(
            "/advocacy/content",
            tenant,
            TenantSettingsUpdated(settings=TenantSettings(click_allow=allow), updated_at=datetime.now(UTC)),
        )
    )
    deadline = time.monotonic() + SETTINGS_TIMEOUT
    while time.monotonic() < deadline:
        rows = await sharing.rows("select settings from tenant_settings where tenant_id = :t", t=tenant)
        if rows and rows[0][0].get("click_allow", {}).get("networks"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("sharing never copied the tenant's settings")


async def scanner_rows(sharing: Sharing, code: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """The link's clicks in order: (verdict, reason, invalidation reason, network)."""
    rows = await sharing.rows(
        "select verdict, reason, invalidation_reason, ip_network from clicks where code = :c order by received_at",
        c=code,
    )
    return [tuple(r) for r in rows]
