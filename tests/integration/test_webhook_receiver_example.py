"""docs/examples/webhook_receiver.py, the partner's receiver we document, served for real on loopback
and fed by the real deliverer: it verifies Standard Webhooks signatures with the ``standardwebhooks``
library (either secret during a rotation), refuses a forged delivery, and applies a redelivered
event once."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.db import make_engine
from advocacy_common.partner_feed import (
    WEBHOOK_DELIVERIES,
    WEBHOOK_ENDPOINT_SECRETS,
    WEBHOOK_ENDPOINTS,
    WebhookDeliverer,
    add_partner_feed_tables,
)
from advocacy_common.webhooks import new_secret

ROOT = Path(__file__).resolve().parents[2]
META = sa.MetaData()
add_partner_feed_tables(META)
D, E, S = WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WEBHOOK_ENDPOINT_SECRETS


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "docs/examples/webhook_receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def engine(new_database: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(new_database)
    async with eng.begin() as conn:
        await conn.run_sync(META.create_all)
    yield eng
    await eng.dispose()


async def no_secret(_: str) -> None:
    return None


async def test_the_documented_receiver_verifies_across_a_rotation_and_applies_once(
    engine: AsyncEngine, new_tenant: str, tmp_path: Path
) -> None:
    old, new = new_secret(), new_secret()
    mod = example()
    receiver = mod.Receiver([new], str(tmp_path / "events.sqlite"))  # the partner already switched
    server = mod.make_server(receiver, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    at = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(E).values(
                    id="ep_1", tenant_id=new_tenant, partner_id="crm", url=url, created_at=at, updated_at=at
                )
            )
            # mid-rotation: the new secret and the old one, valid for another hour
            await conn.execute(sa.insert(S), [
                {"endpoint_id": "ep_1", "secret": old, "created_at": at, "expires_at": at + timedelta(hours=1)},
                {"endpoint_id": "ep_1", "secret": new, "created_at": at, "expires_at": None},
            ])  # fmt: skip
            await conn.execute(sa.insert(D), [
                {"tenant_id": new_tenant, "endpoint_id": "ep_1", "event_id": "e1", "event_type": "t", "url": url,
                 "body": b'{"id":"e1","type":"io.advocacy.share.clicked.v1","data":{}}'},
            ])  # fmt: skip
        deliverer = WebhookDeliverer(engine, no_secret, allow_private=True)
        await deliverer.deliver_due()
        # a redelivery: the same webhook-id again, answered 2xx, not applied twice
        async with engine.begin() as conn:
            await conn.execute(sa.update(D).values(status="pending", attempts=0, next_attempt_at=sa.func.now()))
        await deliverer.deliver_due()
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(D))).one()
        assert (row.status, row.last_status_code) == ("delivered", 204)
        assert receiver.applied() == [("e1", "io.advocacy.share.clicked.v1")]
        # a delivery signed with a secret the receiver does not hold is refused
        forged = {"webhook-id": "e2", "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": "v1,AAAA"}
        assert await asyncio.to_thread(receiver.handle, b"{}", forged) == 401
    finally:
        server.shutdown()
        server.server_close()
