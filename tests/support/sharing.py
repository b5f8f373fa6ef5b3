"""Clicks through the sharing service in the test's process (``tests/integration``'s ``sharing``
fixture, ``test_sharing_harness.Sharing``): a link to click, a click as a browser sends it, the
redirect's injected clock, a tenant's click allow-list, and the verdict rows the worker wrote.

A test module that takes the ``clock`` fixture imports it by name (pytest finds fixtures in the
module's namespace).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from advocacy_common.events import new_event
from advocacy_common.events.content import TenantSettingsUpdated
from advocacy_common.tenant import ClickAllowList, TenantSettings
from tests.integration.test_sharing_harness import FakeClock, Sharing
from tests.support.helpers import ACCEPT_LANGUAGE

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
