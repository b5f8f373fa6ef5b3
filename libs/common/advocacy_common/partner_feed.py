"""The partner feed: partner-visible events, ids only, per tenant; and signed webhooks.

The ``advocacy.*`` topics mix tenants and carry personal data, so partners never read them. The
forwarder (a consumer) copies each partner-visible event to ``advocacy.partner.<tenant>`` with
the same CloudEvents id (partners deduplicate on ``ce_source`` + ``ce_id``) and a payload cut down
to ids, amounts and times (:func:`partner_payload`). Clicks are forwarded only when counted.
For tenants with a webhook URL it also records a delivery in the same transaction; the delivery
worker POSTs it signed (HMAC-SHA256 over ``"{timestamp}.{body}"``) through the outbound guard
(:mod:`advocacy_common.ssrf`), one lane per endpoint, retries with jittered backoff, and keeps a
log the tenant's admins can read.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from advocacy_common import topics
from advocacy_common.events.base import Envelope
from advocacy_common.events.content import MemberErased
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.kafka import ensure_topics
from advocacy_common.kafka_connection import KafkaConnection
from advocacy_common.signing import same_mac
from advocacy_common.ssrf import OutboundGuard, UnsafeURL, bounded_request, check_url_shape, outbound_client

log = logging.getLogger("advocacy.partner_feed")

# What partners may see besides ids and timestamps (fields ending in _id or _at).
PARTNER_FIELDS = frozenset(
    {"network", "verdict", "kind", "value", "points", "action", "badge", "cost_points", "refunded_points",
     "rule_version", "title", "url", "slug", "tags", "external_id", "code"}
)  # fmt: skip
# Ids that are not ids of anything a partner knows, or that identify a visitor.
HIDDEN = frozenset({"visitor", "employee_name", "user_agent", "referrer", "message"})

ERASED_TYPE = MemberErased.TYPE
# The partner-visible fields that hold a person's id: an event naming an erased person is not forwarded.
PERSON_ID_FIELDS = ("employee_id", "proposer_id")
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
    # The deliverer's claim: which tenants have pending deliveries, and each one's due ones in order.
    sa.Index("ix_webhook_lane", "tenant_id", "next_attempt_at", "id", postgresql_where=sa.text("status = 'pending'")),
)
"""Webhook deliveries: the queue and the log tenants' admins read."""


def add_partner_feed_tables(metadata: sa.MetaData) -> None:
    WEBHOOK_DELIVERIES.to_metadata(metadata)


WebhookTarget = Callable[[AsyncSession, str], Awaitable[str | None]]
# Which of these (tenant, employee id) pairs belong to erased people (the host's tombstones).
ErasedCheck = Callable[[AsyncSession, set[tuple[str, str]]], Awaitable[set[tuple[str, str]]]]
WebhookSecret = Callable[[AsyncSession, str], Awaitable[str | None]]


class PartnerForwarder:
    """Consumer handler: copy partner-visible events to per-tenant topics; queue webhooks."""

    def __init__(
        self,
        producer: Callable[[], AIOKafkaProducer | None],
        *,
        bootstrap: KafkaConnection | str,
        partitions: int = 3,
        webhook_url: WebhookTarget | None = None,
        send_timeout: float = 10.0,
        erased: ErasedCheck | None = None,
    ) -> None:
        self.producer = producer
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.webhook_url = webhook_url
        self.send_timeout = send_timeout
        self.erased = erased
        self._known_topics: set[str] = set()

    async def __call__(self, session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
        outgoing = [(e, p) for e in events if (p := partner_payload(e)) is not None]
        if outgoing and self.erased is not None:
            outgoing = await self._without_erased(session, outgoing)
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

    async def _without_erased(
        self, session: AsyncSession, outgoing: list[tuple[Envelope[Any], dict[str, Any]]]
    ) -> list[tuple[Envelope[Any], dict[str, Any]]]:
        """Drop events about erased people (issue 13): an event made before the erasure but consumed
        after it (in flight, or re-published after a broker wipe) must not reach partners. The
        erasure notice itself goes out: it tells partners to delete."""
        assert self.erased is not None

        def people(e: Envelope[Any], p: dict[str, Any]) -> set[tuple[str, str]]:
            return {(e.tenant_id, v) for f in PERSON_ID_FIELDS if isinstance(v := p.get(f), str)}

        named: set[tuple[str, str]] = set().union(*(people(e, p) for e, p in outgoing))
        gone = await self.erased(session, named) if named else set()
        if not gone:
            return outgoing
        return [(e, p) for e, p in outgoing if e.type == ERASED_TYPE or not people(e, p) & gone]

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


# Retries. After failed attempt n the next one waits a random time between RETRY_FLOOR and
# min(RETRY_CAP, 2^n) seconds ("full jitter": a thousand deliveries that failed together come back
# spread out, not in step). MAX_ATTEMPTS attempts span about half an hour on average (at most 68 min).
RETRY_FLOOR = 1.0
RETRY_CAP = 3600.0
# A claimed delivery is leased: it is not due again until the lease ends, so a worker that dies
# gives it back to any worker after that. The lease covers the claimed deliveries of one endpoint
# sent one after another (each within its deadline), plus this margin for the database round trips.
LEASE_MARGIN = 30.0
NO_OUTCOME = "no outcome for the last attempt (the worker stopped during it)"


def retry_delay(attempts: int, rand: Callable[[float, float], float] = random.uniform) -> timedelta:
    """The wait after ``attempts`` failed attempts (pure; ``rand`` is random.uniform or a test's)."""
    return timedelta(seconds=rand(RETRY_FLOOR, min(RETRY_CAP, 2.0 ** max(1, attempts))))


D = WEBHOOK_DELIVERIES


# Due deliveries, at most :per_endpoint per tenant not in :busy, earliest due first, locked. A
# recursive skip over ix_webhook_lane lists the tenants with pending deliveries (one index probe
# each) and a lateral join reads each one's due deliveries off the same index, so a tenant with a
# backlog of 100,000 costs what a tenant with one does.
_CLAIM = sa.text(
    """
    WITH RECURSIVE tenants(t) AS (
        (SELECT tenant_id FROM webhook_deliveries WHERE status = 'pending' ORDER BY tenant_id LIMIT 1)
        UNION ALL
        SELECT (
            SELECT d.tenant_id FROM webhook_deliveries d
            WHERE d.status = 'pending' AND d.tenant_id > tenants.t
            ORDER BY d.tenant_id LIMIT 1
        )
        FROM tenants WHERE tenants.t IS NOT NULL
    )
    SELECT w.id, w.tenant_id, w.attempts FROM webhook_deliveries w
    WHERE w.status = 'pending' AND w.next_attempt_at <= now() AND w.id IN (
        SELECT due.id FROM tenants CROSS JOIN LATERAL (
            SELECT d.id FROM webhook_deliveries d
            WHERE d.tenant_id = tenants.t AND d.status = 'pending' AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at, d.id LIMIT :per_endpoint
        ) due
        WHERE tenants.t IS NOT NULL AND tenants.t <> ALL(:busy)
    )
    ORDER BY w.next_attempt_at, w.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
).bindparams(sa.bindparam("busy", type_=ARRAY(sa.Text)))


class WebhookDeliverer:
    """Worker task: POST due deliveries, signed; retry with backoff; log every attempt's outcome.

    No transaction is open during a call. A short one claims due deliveries (at most ``per_endpoint``
    per endpoint, for at most ``max_in_flight`` endpoints not already being served; an endpoint is a
    tenant's webhook URL, so lanes are keyed by tenant) and leases them;
    each endpoint then gets its own lane that sends its deliveries one after another. Before each
    call a short transaction counts the attempt, after it another records the outcome. A slow or
    hostile endpoint therefore holds only its own lane (one connection, one call at a time, cut at
    ``deadline`` seconds for the whole call, at most ``max_response_bytes`` of its answer read); the
    claim loop keeps serving every other endpoint. ``next_attempt_at`` is the lease and the fencing
    token: a worker whose lease was taken over writes nothing.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        secret: Callable[[str], Awaitable[str | None]],
        *,
        allow_private: bool = False,
        guard: OutboundGuard | None = None,
        verify: ssl.SSLContext | bool = True,
        deadline: float = 10.0,
        max_response_bytes: int = 64 * 1024,
        per_endpoint: int = 5,
        parallel_per_endpoint: int = 4,
        max_in_flight: int = 32,
        poll_seconds: float = 0.5,
        rand: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.engine = engine
        self.secret = secret
        self.guard = guard or OutboundGuard.for_settings(allow_private=allow_private)
        self.verify = verify
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.per_endpoint = per_endpoint
        self.parallel_per_endpoint = max(1, min(parallel_per_endpoint, per_endpoint))
        self.max_in_flight = max_in_flight
        self.poll_seconds = poll_seconds
        self.rand = rand
        self.lease = timedelta(seconds=per_endpoint * deadline + LEASE_MARGIN)
        self.call_lease = timedelta(seconds=deadline + LEASE_MARGIN)

    def client(self) -> httpx.AsyncClient:
        return outbound_client(
            self.guard, timeout=self.deadline, verify=self.verify, max_connections=self.max_in_flight
        )

    async def run(self, stop: asyncio.Event) -> None:
        lanes: dict[str, asyncio.Task[None]] = {}
        wake = asyncio.Event()

        def lane_done(tenant: str, task: asyncio.Task[None]) -> None:
            lanes.pop(tenant, None)
            wake.set()
            if not task.cancelled() and (e := task.exception()) is not None:
                log.warning("webhook lane of tenant %s failed: %s", tenant, e)

        async with self.client() as client:
            try:
                while not stop.is_set():
                    wake.clear()
                    try:
                        claimed = await self.claim(busy=list(lanes))
                    except Exception as e:
                        log.warning("webhook claim failed: %s", e)
                        claimed = {}
                    for tenant, rows in claimed.items():
                        lanes[tenant] = asyncio.create_task(self._lane(client, rows, stop), name=f"webhooks {tenant}")
                        lanes[tenant].add_done_callback(functools.partial(lane_done, tenant))
                    await _nap(stop, wake, self.poll_seconds)
            finally:
                # Lanes stop between deliveries; a call under way gets its deadline, then is cut
                # (its attempt is counted; the lease brings it back).
                running = list(lanes.values())
                if running:
                    await asyncio.wait(running, timeout=self.deadline + 1)
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)

    async def deliver_due(self) -> int:
        """One round (tests, operators): claim what is due, send it (endpoints concurrently), record."""
        stop = asyncio.Event()
        async with self.client() as client:
            claimed = await self.claim()
            await asyncio.gather(*(self._lane(client, rows, stop) for rows in claimed.values()))
        return sum(len(rows) for rows in claimed.values())

    async def claim(self, busy: Sequence[str] = ()) -> dict[str, list[Any]]:
        """Lease due deliveries by endpoint, the earliest due first; none for ``busy`` endpoints.

        An endpoint is a tenant's webhook URL, and a tenant has one, so lanes are keyed by tenant: a
        short key, and an index (``ix_webhook_lane``) that finds the tenants with pending deliveries
        by skipping from one to the next, then reads each one's first due deliveries. The cost grows
        with the number of such tenants, not with the backlog of one of them."""
        free = self.max_in_flight - len(busy)
        if free <= 0:
            return {}
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    _CLAIM, {"busy": list(busy), "per_endpoint": self.per_endpoint, "limit": free * self.per_endpoint}
                )
            ).all()
            # Due with no attempt left: there was no outcome, its worker died during the last call.
            if spent := [r.id for r in rows if r.attempts >= MAX_ATTEMPTS]:
                await conn.execute(sa.update(D).where(D.c.id.in_(spent)).values(status="failed", last_error=NO_OUTCOME))
            lanes = set(list(dict.fromkeys(r.tenant_id for r in rows if r.attempts < MAX_ATTEMPTS))[:free])
            ids = [r.id for r in rows if r.tenant_id in lanes and r.attempts < MAX_ATTEMPTS]
            if not ids:
                return {}
            leased = (
                await conn.execute(
                    sa.update(D)
                    .where(D.c.id.in_(ids))
                    .values(next_attempt_at=sa.func.now() + self.lease)
                    .returning(D.c.id, D.c.tenant_id, D.c.event_id, D.c.url, D.c.body, D.c.next_attempt_at)
                )
            ).all()
        order = {id_: n for n, id_ in enumerate(ids)}
        claimed: dict[str, list[Any]] = {}
        for row in sorted(leased, key=lambda r: order[r.id]):
            claimed.setdefault(row.tenant_id, []).append(row)
        return claimed

    async def _lane(self, client: httpx.AsyncClient, rows: list[Any], stop: asyncio.Event) -> None:
        """An endpoint's claimed deliveries, in the order they fell due, ``parallel_per_endpoint``
        at a time: one at a time, a busy tenant's own webhooks fell behind its events (~30 a second
        on two cores, each costing a call and two short transactions; scenario 10). A slow endpoint
        still holds only its own lane. Stopping, those not yet started are given back."""
        slots = asyncio.Semaphore(self.parallel_per_endpoint)

        async def one(row: Any) -> None:
            async with slots:
                if stop.is_set():
                    await self._release([row])
                    return
                started = await self._start(row)
                if started is None:
                    return  # the lease was taken over by another worker
                attempts, token = started
                outcome = await self._attempt(client, row)
                await self._record(row.id, attempts, token, outcome)

        await asyncio.gather(*(one(row) for row in rows))

    async def _start(self, row: Any) -> tuple[int, datetime] | None:
        """Count the attempt before the call: a worker that dies in it still used it up."""
        async with self.engine.begin() as conn:
            got = (
                await conn.execute(
                    sa.update(D)
                    .where(D.c.id == row.id, D.c.status == "pending", D.c.next_attempt_at == row.next_attempt_at)
                    .values(attempts=D.c.attempts + 1, next_attempt_at=sa.func.now() + self.call_lease)
                    .returning(D.c.attempts, D.c.next_attempt_at)
                )
            ).one_or_none()
        return None if got is None else (got.attempts, got.next_attempt_at)

    async def _release(self, rows: list[Any]) -> None:
        """Stopping: the claimed deliveries not yet sent are due again at once."""
        async with self.engine.begin() as conn:
            for row in rows:
                await conn.execute(
                    sa.update(D)
                    .where(D.c.id == row.id, D.c.status == "pending", D.c.next_attempt_at == row.next_attempt_at)
                    .values(next_attempt_at=sa.func.now())
                )

    async def _record(self, id_: int, attempts: int, token: datetime, outcome: dict[str, Any]) -> None:
        values = dict(outcome)
        if values.get("status") != "delivered":
            values["status"] = "failed" if attempts >= MAX_ATTEMPTS else "pending"
            values["next_attempt_at"] = sa.func.now() + retry_delay(attempts, self.rand)
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(D)
                .where(D.c.id == id_, D.c.status == "pending", D.c.next_attempt_at == token)
                .values(**values)
            )

    async def _attempt(self, client: httpx.AsyncClient, row: Any) -> dict[str, Any]:
        try:
            check_url_shape(row.url)
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
            r = await bounded_request(
                client,
                "POST",
                row.url,
                deadline=self.deadline,
                max_bytes=self.max_response_bytes,
                headers=headers,
                content=row.body,
            )
        except UnsafeURL as e:
            return {"last_error": f"refused: {e}"[:500], "last_status_code": None}
        except TimeoutError:
            return {"last_error": f"no complete answer within {self.deadline:g} s", "last_status_code": None}
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            return {"last_error": f"{type(e).__name__}: {e}"[:500], "last_status_code": None}
        except Exception as e:  # whatever a partner's answer provokes is this attempt's failure
            log.warning("webhook %s: unexpected failure", row.id, exc_info=True)
            return {"last_error": f"{type(e).__name__}: {e}"[:500], "last_status_code": None}
        if 200 <= r.status_code < 300:
            return {
                "status": "delivered",
                "delivered_at": sa.func.now(),
                "last_status_code": r.status_code,
                "last_error": None,
            }
        return {"last_status_code": r.status_code, "last_error": f"HTTP {r.status_code}"}


async def _nap(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Until ``stop`` or ``wake`` is set, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
