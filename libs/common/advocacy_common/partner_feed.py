"""The partner feed: partner-visible events, ids only, per tenant; and signed webhooks.

The ``advocacy.*`` topics mix tenants and carry personal data, so partners never read them. The
forwarder (a consumer) copies each partner-visible event to ``advocacy.partner.<tenant>`` with
the same CloudEvents id (partners deduplicate on ``ce_source`` + ``ce_id``) and a payload cut down
to ids, amounts and times (:func:`partner_payload`). Clicks are forwarded only when counted.
For tenants with a webhook URL it also records a delivery in the same transaction; the delivery
worker POSTs it signed (HMAC-SHA256 over ``"{timestamp}.{body}"``), retries with backoff, and
keeps a log the tenant's admins can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from advocacy_common import topics
from advocacy_common.events.base import Envelope
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.kafka import ensure_topics
from advocacy_common.signing import same_mac
from advocacy_common.ssrf import UnsafeURL, check_url_shape, resolve_public

log = logging.getLogger("advocacy.partner_feed")

# What partners may see besides ids and timestamps (fields ending in _id or _at).
PARTNER_FIELDS = frozenset(
    {"network", "verdict", "kind", "value", "points", "action", "badge", "cost_points", "refunded_points",
     "rule_version", "title", "url", "slug", "tags", "external_id", "code"}
)  # fmt: skip
# Ids that are not ids of anything a partner knows, or that identify a visitor.
HIDDEN = frozenset({"visitor", "employee_name", "user_agent", "referrer", "message"})

FEED_TOPICS = (topics.CONTENT, topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.GAMIFICATION)
MAX_ATTEMPTS = 12


def partner_payload(envelope: Envelope[Any]) -> dict[str, Any] | None:
    """The partner view of an event, or None when partners do not get it."""
    data = envelope.data
    if not data.PARTNER_VISIBLE:
        return None
    if isinstance(data, ShareClicked) and data.verdict is not Verdict.counted:
        return None
    full = data.model_dump(mode="json")
    return {
        k: v
        for k, v in full.items()
        if k not in HIDDEN and (k in PARTNER_FIELDS or k.endswith("_id") or k.endswith("_at"))
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(
    secret: str, timestamp: int, body: bytes, signature: str, *, now: float, tolerance: int = 300
) -> bool:
    """What a partner does on receipt (documented in docs/partners.md)."""
    if abs(now - timestamp) > tolerance:
        return False
    return same_mac(sign(secret, timestamp, body), signature)


_meta = sa.MetaData()
WEBHOOK_DELIVERIES = sa.Table(
    "webhook_deliveries",
    _meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("tenant_id", "event_id", name="uq_webhook_event"),
    sa.Index("ix_webhook_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
    sa.Index("ix_webhook_tenant", "tenant_id", "id"),
)
"""Webhook deliveries: the queue and the log tenants' admins read."""


def add_partner_feed_tables(metadata: sa.MetaData) -> None:
    WEBHOOK_DELIVERIES.to_metadata(metadata)


WebhookTarget = Callable[[AsyncSession, str], Awaitable[str | None]]
WebhookSecret = Callable[[AsyncSession, str], Awaitable[str | None]]


class PartnerForwarder:
    """Consumer handler: copy partner-visible events to per-tenant topics; queue webhooks."""

    def __init__(
        self,
        producer: Callable[[], AIOKafkaProducer | None],
        *,
        bootstrap: str,
        partitions: int = 3,
        webhook_url: WebhookTarget | None = None,
        send_timeout: float = 10.0,
    ) -> None:
        self.producer = producer
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.webhook_url = webhook_url
        self.send_timeout = send_timeout
        self._known_topics: set[str] = set()

    async def __call__(self, session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
        outgoing = [(e, p) for e in events if (p := partner_payload(e)) is not None]
        if not outgoing:
            return
        producer = self.producer()
        if producer is None:
            raise ConnectionError("no producer for the partner feed")
        wanted = {topics.partner_feed(e.tenant_id) for e, _ in outgoing} - self._known_topics
        if wanted:
            await ensure_topics(self.bootstrap, sorted(wanted), self.partitions)
            self._known_topics |= wanted
        try:
            futures = []
            for env, payload in outgoing:
                futures.append(
                    await producer.send(
                        topics.partner_feed(env.tenant_id),
                        orjson.dumps(payload),
                        key=env.key.encode(),
                        headers=env.headers(),
                    )
                )
            await asyncio.wait_for(asyncio.gather(*futures), self.send_timeout)
        except KafkaError as e:
            # The broker may have lost the topics (nothing auto-creates them): check again next time.
            # A connection-class error makes the consumer retry the batch instead of dead-lettering.
            self._known_topics.clear()
            raise ConnectionError(f"partner feed publish failed: {e}") from e
        if self.webhook_url is not None:
            await self._queue_webhooks(session, outgoing)

    async def _queue_webhooks(
        self, session: AsyncSession, outgoing: list[tuple[Envelope[Any], dict[str, Any]]]
    ) -> None:
        urls: dict[str, str | None] = {}
        rows = []
        for env, payload in outgoing:
            if env.tenant_id not in urls:
                assert self.webhook_url is not None
                urls[env.tenant_id] = await self.webhook_url(session, env.tenant_id)
            url = urls[env.tenant_id]
            if not url:
                continue
            body = orjson.dumps(
                {
                    "specversion": "1.0",
                    "id": env.id,
                    "source": env.source,
                    "type": env.type,
                    "time": env.time.isoformat().replace("+00:00", "Z"),
                    "subject": env.subject,
                    "tenantid": env.tenant_id,
                    "datacontenttype": "application/json",
                    "data": payload,
                }
            )
            rows.append(
                {"tenant_id": env.tenant_id, "event_id": env.id, "event_type": env.type, "url": url, "body": body}
            )
        if rows:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            await session.execute(pg_insert(WEBHOOK_DELIVERIES).values(rows).on_conflict_do_nothing())


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s ... capped at one hour."""
    return timedelta(seconds=min(3600, 2 ** max(1, attempts)))


class WebhookDeliverer:
    """Worker task: POST due deliveries, signed; retry with backoff; log every attempt's outcome."""

    def __init__(
        self,
        engine: AsyncEngine,
        secret: Callable[[str], Awaitable[str | None]],
        *,
        allow_private: bool = False,
        timeout: float = 5.0,
        batch: int = 50,
        poll_seconds: float = 0.5,
    ) -> None:
        self.engine = engine
        self.secret = secret
        self.allow_private = allow_private
        self.timeout = timeout
        self.batch = batch
        self.poll_seconds = poll_seconds

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            while not stop.is_set():
                try:
                    n = await self.deliver_due(client)
                except Exception as e:
                    log.warning("webhook delivery round failed: %s", e)
                    n = 0
                if n == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.poll_seconds)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(WEBHOOK_DELIVERIES)
                    .where(
                        WEBHOOK_DELIVERIES.c.status == "pending", WEBHOOK_DELIVERIES.c.next_attempt_at <= sa.func.now()
                    )
                    .order_by(WEBHOOK_DELIVERIES.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                outcome = await self._attempt(client, row)
                attempts = row.attempts + 1
                values: dict[str, Any] = {"attempts": attempts, **outcome}
                if outcome.get("status") != "delivered":
                    values["status"] = "failed" if attempts >= MAX_ATTEMPTS else "pending"
                    values["next_attempt_at"] = datetime.now(UTC) + backoff(attempts)
                await conn.execute(
                    sa.update(WEBHOOK_DELIVERIES).where(WEBHOOK_DELIVERIES.c.id == row.id).values(**values)
                )
        return len(rows)

    async def _attempt(self, client: httpx.AsyncClient, row: Any) -> dict[str, Any]:
        try:
            if self.allow_private:
                check_url_shape(row.url)
            else:
                await resolve_public(row.url)
        except UnsafeURL as e:
            return {"last_error": f"refused: {e}", "last_status_code": None}
        secret = await self.secret(row.tenant_id)
        if not secret:
            return {"last_error": "no webhook secret for the tenant", "last_status_code": None}
        ts = int(time.time())
        headers = {
            "content-type": "application/cloudevents+json",
            "x-advocacy-timestamp": str(ts),
            "x-advocacy-signature": sign(secret, ts, row.body),
            "x-advocacy-event-id": row.event_id,
        }
        try:
            r = await client.post(row.url, content=row.body, headers=headers)
        except httpx.HTTPError as e:
            return {"last_error": f"{type(e).__name__}: {e}"[:500], "last_status_code": None}
        if 200 <= r.status_code < 300:
            return {
                "status": "delivered",
                "delivered_at": datetime.now(UTC),
                "last_status_code": r.status_code,
                "last_error": None,
            }
        return {"last_status_code": r.status_code, "last_error": f"HTTP {r.status_code}"}
