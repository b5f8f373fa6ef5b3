"""Migration 0004 of content: stored URLs become their canonical (WHATWG) form; refused ones stay
as they were (sharing answers 410 for them), and the webhook URL in tenant settings is rewritten too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from advocacy_common.db import make_engine
from advocacy_common.migrations import upgrade

pytestmark = pytest.mark.integration

ROWS = {
    "plain": ("https://e.com/a", "https://e.com/a"),
    "upper": ("HTTPS://Good.Example:443/a b?q=ä", "https://good.example/a%20b?q=%C3%A4"),
    "idn": ("https://münchen.de", "https://xn--mnchen-3ya.de/"),
    "open-redirect": ("https://good.example\\@evil.example/x", "https://good.example\\@evil.example/x"),
}


async def test_migration_rewrites_stored_urls(new_database: str) -> None:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database, "0003")
    engine = make_engine(new_database, pool_size=1)
    at = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            for item_id, (raw, _) in ROWS.items():
                await conn.execute(
                    sa.text(
                        "INSERT INTO content_items (id, tenant_id, title, url, slug, tags, captions, audience, "
                        "status, created_by, created_at, updated_at) VALUES (:id, 't', 'x', :url, 'x', '{}', "
                        "'{}', '{}', 'published', 'admin', :at, :at)"
                    ),
                    {"id": item_id, "url": raw, "at": at},
                )
            await conn.execute(
                sa.text("INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ('t', :s, :at)"),
                {"s": '{"partner_webhook_url": "HTTPS://Hooks.Example/In"}', "at": at},
            )
        await asyncio.to_thread(upgrade, "advocacy_content", new_database)
        async with engine.connect() as conn:
            stored = dict((await conn.execute(sa.text("SELECT id, url FROM content_items"))).all())
            hook = (
                await conn.execute(sa.text("SELECT settings->>'partner_webhook_url' FROM tenant_settings"))
            ).scalar()
    finally:
        await engine.dispose()
    assert stored == {item_id: canonical for item_id, (_, canonical) in ROWS.items()}
    assert hook == "https://hooks.example/In"
