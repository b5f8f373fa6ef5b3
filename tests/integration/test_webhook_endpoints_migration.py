"""Migration 0010 of content (Standard Webhooks): code of the release before keeps working. It writes
deliveries without ``endpoint_id`` (they go to the tenant-wide URL, endpoint ``""``) and relies on
``ON CONFLICT DO NOTHING`` to drop a repeated event; after the upgrade both still hold, and two
endpoints of a tenant may each get the same event."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from advocacy_common.db import make_engine
from advocacy_common.migrations import upgrade

pytestmark = pytest.mark.integration

OLD_INSERT = sa.text(
    "INSERT INTO webhook_deliveries (tenant_id, event_id, event_type, url, body)"
    " VALUES ('t', :e, 'io.advocacy.content.published.v1', 'https://p.example/h', '\\x7b7d') ON CONFLICT DO NOTHING"
)


async def test_the_release_before_writes_as_it_did_and_endpoints_each_get_an_event(new_database: str) -> None:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database, "0010_standard_webhooks")
    engine = make_engine(new_database, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(OLD_INSERT, {"e": "e1"})
            await conn.execute(OLD_INSERT, {"e": "e1"})  # a redelivered batch: dropped, as before
            await conn.execute(
                sa.text(
                    "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, url, body)"
                    " VALUES ('t', 'ep_a', 'e1', 'x', 'https://a.example/', '\\x7b7d'),"
                    " ('t', 'ep_b', 'e1', 'x', 'https://b.example/', '\\x7b7d') ON CONFLICT DO NOTHING"
                )
            )
            rows = (
                await conn.execute(sa.text("SELECT endpoint_id FROM webhook_deliveries ORDER BY endpoint_id"))
            ).scalars()
            assert list(rows) == ["", "ep_a", "ep_b"]
            indexes = set(
                (await conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'webhook_deliveries'")))
                .scalars()
                .all()
            )
        assert {"uq_webhook_endpoint_event", "ix_webhook_endpoint_lane", "ix_webhook_created"} <= indexes
        assert "uq_webhook_event" not in indexes
    finally:
        await engine.dispose()
