"""The notifications service (role ``all``) in the test's process, for integration tests: its own
database on the shared PostgreSQL, its consumers on the test module's broker, and the senders and
schedulers left to the test (their intervals are an hour: the test calls each pass with its clock).

``running_notifications(...)`` starts it and yields a ``Notifications`` handle; a test module wraps
it in a module-scoped fixture with the settings its receivers need (an SMTP port, loopback webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer

from advocacy_common.events import Envelope
from advocacy_common.migrations import upgrade
from advocacy_common.runtime import Runtime
from advocacy_notifications.app import create_app
from advocacy_notifications.features import chat, digests, mail
from advocacy_notifications.settings import NotificationsSettings
from tests.support.helpers import in_process

BASE_URL = "http://notifications.test"


# A sender process of its own, so a fail point can SIGKILL it: argv is the database URL, the SMTP
# port, the sender's feature module (mail or chat) and the clock's time.
_SENDER = """
import asyncio, importlib, sys
from datetime import datetime
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_notifications.settings import NotificationsSettings

async def main() -> None:
    s = NotificationsSettings(
        database_url=sys.argv[1], smtp_port=int(sys.argv[2]), webhook_allow_private=True, dev_mode=True, log_json=False
    )
    sender = importlib.import_module("advocacy_notifications.features." + sys.argv[3])
    now = datetime.fromisoformat(sys.argv[4])
    engine = make_engine(s.database_url)
    try:
        await sender.deliver_pending(make_sessionmaker(engine), s, clock=lambda: now)
    finally:
        await engine.dispose()

asyncio.run(main())
"""


@dataclass
class Notifications:
    app: Any
    runtime: Runtime
    settings: NotificationsSettings
    producer: AIOKafkaProducer
    mint: Callable[..., str]
    engine: Any

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=h, timeout=10)

    def admin(self, tenant: str) -> httpx.AsyncClient:
        return self.client(self.mint(tenant, "boss", "admin"))

    async def publish(self, env: Envelope[Any]) -> None:
        await asyncio.wait_for(
            self.producer.send_and_wait(env.topic, env.value(), key=env.key.encode(), headers=env.headers()), 10
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)

    async def compose_digests(self, now: datetime) -> int:
        """The digest scheduler at ``now`` (the injected clock): how many digests it queued."""
        async with self.runtime.sessionmaker() as session, session.begin():
            return await digests.compose_due(session, now, base_url=BASE_URL, limit=1000)

    async def digest_pass(self, now: datetime) -> int:
        """The scheduler at ``now``, then the mail sender."""
        queued = await self.compose_digests(now)
        await mail.deliver_pending(self.runtime.sessionmaker, self.settings, clock=lambda: now)
        return queued

    async def sender_killed_at(self, sender: str, point: str, now: datetime) -> str:
        """A ``sender`` pass (``mail`` or ``chat``) at ``now`` in a process of its own, SIGKILLed at
        the fail point ``point`` (advocacy_common.failpoints): its stderr."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SENDER,
            self.settings.database_url,
            str(self.settings.smtp_port),
            sender,
            now.isoformat(),
            env={**os.environ, "ADVOCACY_FAILPOINTS": f"{point}=nth:1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-2000:])
        return err.decode()

    async def chat_pass(self, now: datetime, settings: NotificationsSettings | None = None) -> int:
        """The team-channel sender at ``now``: how many posts it delivered."""
        return await chat.deliver_pending(self.runtime.sessionmaker, settings or self.settings, clock=lambda: now)


@contextlib.asynccontextmanager
async def running_notifications(
    pg: Any, broker: Any, dev_keys: Any, mint: Callable[..., str], **settings: Any
) -> AsyncIterator[Notifications]:
    """The service on a fresh database and ``broker``; ``settings`` override the test defaults."""
    url = pg.create_database(f"notifications_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(upgrade, "advocacy_notifications", url)
    config = NotificationsSettings(
        **{
            "database_url": url,
            "kafka_bootstrap_servers": broker.bootstrap,
            "dev_mode": True,
            "jwt_jwks_path": str(dev_keys.jwks_path),
            "log_json": False,
            "log_level": "WARNING",
            # the test drives the schedulers and the senders itself, with its clock
            "digest_interval_seconds": 3600,
            "send_interval_seconds": 3600,
            "webhook_interval_seconds": 3600,
            **settings,
        }
    )
    app = create_app(config)
    async with in_process(app, "notifications", broker.bootstrap, url) as (runtime, producer, engine):
        yield Notifications(app, runtime, config, producer, mint, engine)


async def equals(value: Any, expected: Any) -> bool:
    """For ``eventually``: whether the awaited ``value`` is ``expected``."""
    return bool(await value == expected)
