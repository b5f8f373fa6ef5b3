"""The sharing service in this process (role ``all``) on its own database and its own Tansu broker,
so its consumer groups never meet another sharing deployment's. Used by test_sharing_*.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.db import make_engine
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import ContentPublished
from advocacy_common.kafka import make_producer
from advocacy_common.migrations import upgrade
from advocacy_common.runtime import Runtime
from advocacy_sharing.app import create_app
from advocacy_sharing.settings import SharingSettings


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
    engine = make_engine(database_url)
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            runtime: Runtime = app.state.runtime
            # the worker boots in the background: wait for its consumers to join
            deadline = time.monotonic() + 30
            while not (runtime.consumers and all(c.connected for c in runtime.consumers)):
                assert time.monotonic() < deadline, "sharing consumers did not start"
                await asyncio.sleep(0.05)
            yield Sharing(app, runtime, engine, producer, mint, bootstrap)
    finally:
        await producer.stop()
        await engine.dispose()
