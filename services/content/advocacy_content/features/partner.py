"""The partner feed, hosted by content's worker: content owns the tenant's webhook URL.

The forwarder (``advocacy_common.partner_feed``) copies partner-visible events to the tenant's
topic and queues webhook deliveries; the deliverer POSTs them signed with the tenant's secret.
Admins rotate the secret (shown once) and read the delivery log.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.pagination import PageParams, as_int, encode_cursor, parse_cursor
from advocacy_common.partner_feed import FEED_TOPICS, PartnerForwarder, WebhookDeliverer
from advocacy_common.runtime import LateConsumer, Runtime
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_content.adapters.events import now
from advocacy_content.adapters.tombstones import TOMBSTONES
from advocacy_content.db import WebhookDeliveries, WebhookSecrets
from advocacy_content.settings import ContentSettings

GROUP = "content-partner-feed"
D = WebhookDeliveries


async def webhook_url(session: AsyncSession, tenant_id: str) -> str | None:
    return (await load_tenant_settings(session, tenant_id)).partner_webhook_url


def _forwarder(runtime: Runtime) -> PartnerForwarder:
    settings = runtime.settings
    assert isinstance(settings, ContentSettings)
    return PartnerForwarder(
        runtime.get_producer,
        bootstrap=settings.kafka,
        partitions=settings.partner_topic_partitions,
        webhook_url=webhook_url,
        send_timeout=settings.kafka_send_timeout_seconds,
        erased=TOMBSTONES.erased,  # nothing about erased people reaches partners
    )


PARTNER_FEED = LateConsumer(group_id=GROUP, topics=FEED_TOPICS, build=_forwarder)


async def deliver_webhooks(runtime: Runtime, stop: asyncio.Event) -> None:
    settings = runtime.settings
    assert isinstance(settings, ContentSettings)

    async def secret_for(tenant_id: str) -> str | None:
        async with runtime.sessionmaker() as session:
            return await session.scalar(
                sa.select(WebhookSecrets.c.secret).where(WebhookSecrets.c.tenant_id == tenant_id)
            )

    deliverer = WebhookDeliverer(
        runtime.engine,
        secret_for,
        allow_private=settings.webhook_allow_private,
        deadline=settings.webhook_deadline_seconds,
        max_response_bytes=settings.webhook_max_response_bytes,
        per_endpoint=settings.webhook_per_endpoint,
        parallel_per_endpoint=settings.webhook_parallel_per_endpoint,
        max_in_flight=settings.webhook_max_endpoints_in_flight,
    )
    await deliverer.run(stop)


async def rotate_secret(session: AsyncSession, who: Principal) -> dict[str, Any]:
    """A new signing secret; the old one stops working at once. Shown only in this answer."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    at = now()
    stmt = pg_insert(WebhookSecrets).values(tenant_id=who.tenant_id, secret=secret, rotated_at=at, rotated_by=who.sub)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"secret": stmt.excluded.secret, "rotated_at": at, "rotated_by": who.sub},
        )
    )
    return {"secret": secret, "rotated_at": at}


async def list_deliveries(
    session: AsyncSession, who: Principal, page: PageParams, status: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = sa.select(
        D.c.id, D.c.event_id, D.c.event_type, D.c.url, D.c.status, D.c.attempts, D.c.last_status_code,
        D.c.last_error, D.c.created_at, D.c.next_attempt_at, D.c.delivered_at,
    ).where(D.c.tenant_id == who.tenant_id)  # fmt: skip
    if status:
        stmt = stmt.where(D.c.status == status)
    if page.cursor:
        (before,) = parse_cursor(page.cursor, as_int)
        stmt = stmt.where(D.c.id < before)
    rows = (await session.execute(stmt.order_by(D.c.id.desc()).limit(page.limit + 1))).all()
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor([rows[-1].id])
    items = [
        {
            "id": str(r.id),
            "event_id": r.event_id,
            "event_type": r.event_type,
            "url": r.url,
            "status": r.status,
            "attempts": r.attempts,
            "last_status_code": r.last_status_code,
            "last_error": r.last_error,
            "created_at": r.created_at,
            "next_attempt_at": r.next_attempt_at if r.status == "pending" else None,
            "delivered_at": r.delivered_at,
        }
        for r in rows
    ]
    return items, cursor
