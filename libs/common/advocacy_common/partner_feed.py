"""The partner feed: partner-visible events, ids only, per tenant; and signed webhooks.

The ``advocacy.*`` topics mix tenants and carry personal data, so partners never read them. The
forwarder (a consumer) copies each partner-visible event to ``advocacy.partner.<tenant>`` with
the same CloudEvents id (partners deduplicate on ``ce_source`` + ``ce_id``) and a payload cut down
to ids, amounts and times (:func:`partner_payload`). Clicks are forwarded only when counted.
In the same transaction it records a delivery for each of the tenant's webhook endpoints whose
event-type filter takes the event (and for the deprecated tenant-wide URL). The delivery worker
POSTs them signed (Standard Webhooks, or the deprecated scheme: :mod:`advocacy_common.webhooks`)
through the outbound guard (:mod:`advocacy_common.ssrf`), one lane per endpoint, retries on the
schedule of :mod:`advocacy_common.webhooks`, and keeps a log of every attempt that the tenant's
admins read, purged after a retention. Its HTTP client (and httpx with it, issue 19) is made when
the first delivery is claimed: a process whose tenants have no webhook never loads it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from advocacy_common import topics
from advocacy_common.events.base import Envelope
from advocacy_common.events.content import MemberErased
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.kafka import ensure_topics
from advocacy_common.kafka_connection import KafkaConnection
from advocacy_common.signing import same_mac
from advocacy_common.ssrf import OutboundGuard, UnsafeURL, bounded_request, check_url_shape, outbound_client
from advocacy_common.webhooks import MAX_ATTEMPTS as MAX_ATTEMPTS
from advocacy_common.webhooks import (
    disables_endpoint,
    legacy_headers,
    legacy_signature,
    next_wait,
    retry_after,
    standard_headers,
    valid_secrets,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("advocacy.partner_feed")

# What partners may see besides ids and timestamps (fields ending in _id or _at).
PARTNER_FIELDS = frozenset(
    {"network", "verdict", "kind", "value", "points", "action", "badge", "cost_points", "refunded_points",
     "rule_version", "title", "url", "slug", "tags", "external_id", "code", "entry_count", "by_action"}
)  # fmt: skip
# Ids that are not ids of anything a partner knows, or that identify a visitor.
HIDDEN = frozenset({"visitor", "employee_name", "user_agent", "referrer", "message"})

ERASED_TYPE = MemberErased.TYPE
# The partner-visible fields that hold a person's id: an event naming an erased person is not forwarded.
PERSON_ID_FIELDS = ("employee_id", "proposer_id")
FEED_TOPICS = (topics.CONTENT, topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.GAMIFICATION)
# The endpoint id of deliveries to the tenant-wide ``partner_webhook_url`` (deprecated: legacy scheme).
TENANT_URL = ""


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
    """The deprecated scheme's signature (advocacy_common.webhooks.legacy_signature)."""
    return legacy_signature(secret, timestamp, body)


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
    # The endpoint (WEBHOOK_ENDPOINTS.id), or TENANT_URL ("") for the tenant-wide URL (and rows
    # written by code older than endpoints, which does not know the column).
    sa.Column("endpoint_id", sa.Text, nullable=False, server_default=TENANT_URL),
    # One delivery per endpoint and event (what made it one per tenant and event before endpoints).
    sa.Index("uq_webhook_endpoint_event", "tenant_id", "endpoint_id", "event_id", unique=True),
    sa.Index("ix_webhook_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
    sa.Index("ix_webhook_tenant", "tenant_id", "id"),
    # Before endpoints, the claim's lanes were tenants (kept for code of that release during a roll-out).
    sa.Index("ix_webhook_lane", "tenant_id", "next_attempt_at", "id", postgresql_where=sa.text("status = 'pending'")),
    # The deliverer's claim: which endpoints have pending deliveries, and each one's due ones in order.
    sa.Index(
        "ix_webhook_endpoint_lane",
        "tenant_id",
        "endpoint_id",
        "next_attempt_at",
        "id",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    # Replays (an endpoint's deliveries in a time range) and the retention purge (oldest first).
    sa.Index("ix_webhook_endpoint_created", "tenant_id", "endpoint_id", "created_at"),
    sa.Index("ix_webhook_created", "created_at"),
)
"""Webhook deliveries: the queue and the log tenants' admins read."""

WEBHOOK_ENDPOINTS = sa.Table(
    "webhook_endpoints",
    _meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    # The partner (sharing's registry, issue 13) the endpoint serves; content keeps no copy of that
    # registry, so this is the partner's id as the admin gives it.
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    # The partner-visible types it receives; NULL: every one, including types added later.
    sa.Column("event_types", ARRAY(sa.Text), nullable=True),
    sa.Column("signature_scheme", sa.Text, nullable=False, server_default="standard"),
    sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_webhook_endpoints_tenant", "tenant_id", "id"),
)
"""A tenant's webhook endpoints, several per tenant, each for one partner."""

WEBHOOK_ENDPOINT_SECRETS = sa.Table(
    "webhook_endpoint_secrets",
    _meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("endpoint_id", sa.Text, sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # NULL: the current secret. A rotation sets the previous one's to the end of the overlap.
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_webhook_endpoint_secrets", "endpoint_id", "id"),
)
"""Signing secrets (``whsec_``): every one not expired signs each delivery (rotation overlap)."""

WEBHOOK_ATTEMPTS = sa.Table(
    "webhook_attempts",
    _meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("delivery_id", sa.BigInteger, sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=True),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)
"""Every attempt of every delivery: its answer (or error) and latency; purged with its delivery."""


def add_partner_feed_tables(metadata: sa.MetaData) -> None:
    for table in (WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WEBHOOK_ENDPOINT_SECRETS, WEBHOOK_ATTEMPTS):
        table.to_metadata(metadata)


D = WEBHOOK_DELIVERIES
E = WEBHOOK_ENDPOINTS
S = WEBHOOK_ENDPOINT_SECRETS
A = WEBHOOK_ATTEMPTS


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

    async def _targets(self, session: AsyncSession, tenant_id: str) -> list[tuple[str, str, frozenset[str] | None]]:
        """The tenant's webhook targets: (endpoint id, URL, event types or None for all). Its enabled
        endpoints, and the tenant-wide URL (deprecated) when set."""
        rows = (
            await session.execute(
                sa.select(E.c.id, E.c.url, E.c.event_types).where(E.c.tenant_id == tenant_id, E.c.disabled_at.is_(None))
            )
        ).all()
        out = [(r.id, r.url, None if r.event_types is None else frozenset(r.event_types)) for r in rows]
        if self.webhook_url is not None and (url := await self.webhook_url(session, tenant_id)):
            out.append((TENANT_URL, url, None))
        return out

    async def _queue_webhooks(
        self, session: AsyncSession, outgoing: list[tuple[Envelope[Any], dict[str, Any]]]
    ) -> None:
        targets: dict[str, list[tuple[str, str, frozenset[str] | None]]] = {}
        rows = []
        for env, payload in outgoing:
            if env.tenant_id not in targets:
                targets[env.tenant_id] = await self._targets(session, env.tenant_id)
            wanted = [(e, u) for e, u, types in targets[env.tenant_id] if types is None or env.type in types]
            if not wanted:
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
            rows += [
                {
                    "tenant_id": env.tenant_id,
                    "endpoint_id": endpoint_id,
                    "event_id": env.id,
                    "event_type": env.type,
                    "url": url,
                    "body": body,
                }
                for endpoint_id, url in wanted
            ]
        if rows:
            await session.execute(pg_insert(WEBHOOK_DELIVERIES).values(rows).on_conflict_do_nothing())


# A claimed delivery is leased: it is not due again until the lease ends, so a worker that dies
# gives it back to any worker after that. The lease covers the claimed deliveries of one endpoint
# sent one after another (each within its deadline), plus this margin for the database round trips.
LEASE_MARGIN = 30.0
NO_OUTCOME = "no outcome for the last attempt (the worker stopped during it)"
DISABLED = "endpoint disabled"
# The retention purge deletes at most this many finished deliveries per statement (short locks).
PURGE_BATCH = 1000
# A lane is a (tenant, endpoint) pair; its key joins the two with a character no id holds.
_LANE_SEP = "\x1f"


def lane_key(tenant_id: str, endpoint_id: str) -> str:
    return f"{tenant_id}{_LANE_SEP}{endpoint_id}"


# Due deliveries, at most :per_endpoint per endpoint not in :busy, earliest due first, locked. A
# recursive skip over ix_webhook_endpoint_lane lists the (tenant, endpoint) pairs with pending
# deliveries (one index probe each) and a lateral join reads each one's due deliveries off the same
# index, so an endpoint with a backlog of 100,000 costs what an endpoint with one does.
_CLAIM = sa.text(
    """
    WITH RECURSIVE lanes(t, e) AS (
        (SELECT tenant_id, endpoint_id FROM webhook_deliveries WHERE status = 'pending'
         ORDER BY tenant_id, endpoint_id LIMIT 1)
        UNION ALL
        SELECT n.tenant_id, n.endpoint_id FROM lanes CROSS JOIN LATERAL (
            SELECT d.tenant_id, d.endpoint_id FROM webhook_deliveries d
            WHERE d.status = 'pending' AND (d.tenant_id, d.endpoint_id) > (lanes.t, lanes.e)
            ORDER BY d.tenant_id, d.endpoint_id LIMIT 1
        ) n
    )
    SELECT w.id, w.tenant_id, w.endpoint_id, w.attempts FROM webhook_deliveries w
    WHERE w.status = 'pending' AND w.next_attempt_at <= now() AND w.id IN (
        SELECT due.id FROM lanes CROSS JOIN LATERAL (
            SELECT d.id FROM webhook_deliveries d
            WHERE d.tenant_id = lanes.t AND d.endpoint_id = lanes.e AND d.status = 'pending'
              AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at, d.id LIMIT :per_endpoint
        ) due
        WHERE (lanes.t || chr(31) || lanes.e) <> ALL(:busy)
    )
    ORDER BY w.next_attempt_at, w.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
).bindparams(sa.bindparam("busy", type_=ARRAY(sa.Text)))

_PURGE = sa.text(
    """
    DELETE FROM webhook_deliveries WHERE id IN (
        SELECT id FROM webhook_deliveries WHERE created_at < :cutoff AND status <> 'pending'
        ORDER BY created_at LIMIT :batch
    )
    """
)


@dataclass(frozen=True)
class _Endpoint:
    url: str | None  # None: the URL the delivery was queued with (the tenant-wide URL)
    scheme: str
    secrets: tuple[str, ...]
    refused: str | None = None  # why no call is made (endpoint disabled or without secret)


@dataclass(frozen=True)
class _Target:
    """What one attempt needs: its count, its lease, and the endpoint as its lane read it."""

    attempts: int
    token: datetime  # the lease: the fencing token of this attempt's outcome
    url: str
    scheme: str = "standard"
    secrets: tuple[str, ...] = ()
    refused: str | None = None  # why no call is made (endpoint disabled or without secret)


@dataclass(frozen=True)
class _Outcome:
    started_at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: int | None = None
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDeliverer:
    """Worker task: POST due deliveries, signed; retry on the schedule; log every attempt.

    No transaction is open during a call. A short one claims due deliveries (at most ``per_endpoint``
    per endpoint, for at most ``max_in_flight`` endpoints not already being served; an endpoint is
    one of a tenant's webhook endpoints, or its deprecated tenant-wide URL) and leases them; each
    endpoint then gets its own lane that sends its deliveries ``parallel_per_endpoint`` at a time.
    Before each call a short transaction counts the attempt (and reads the endpoint's URL, scheme and
    valid secrets), after it another records the outcome and the attempt's log row. A slow or
    hostile endpoint therefore holds only its own lane (cut at ``deadline`` seconds for the whole
    call, at most ``max_response_bytes`` of its answer read); the claim loop keeps serving every
    other endpoint. ``next_attempt_at`` is the lease and the fencing token: a worker whose lease was
    taken over writes nothing. ``secret`` gives a tenant's secret for its tenant-wide URL (legacy).
    Finished deliveries older than ``retention`` are purged every ``purge_seconds``.
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
        retention: timedelta = timedelta(days=30),
        purge_seconds: float = 600.0,
        rand: Callable[[float, float], float] = random.uniform,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
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
        self.retention = retention
        self.purge_seconds = purge_seconds
        self.rand = rand
        self.clock = clock
        self.lease = timedelta(seconds=per_endpoint * deadline + LEASE_MARGIN)
        self.call_lease = timedelta(seconds=deadline + LEASE_MARGIN)

    def client(self) -> httpx.AsyncClient:
        return outbound_client(
            self.guard, timeout=self.deadline, verify=self.verify, max_connections=self.max_in_flight
        )

    async def run(self, stop: asyncio.Event) -> None:
        lanes: dict[str, asyncio.Task[None]] = {}
        wake = asyncio.Event()
        next_purge = time.monotonic()

        def lane_done(key: str, task: asyncio.Task[None]) -> None:
            lanes.pop(key, None)
            wake.set()
            if not task.cancelled() and (e := task.exception()) is not None:
                tenant, _, endpoint = key.partition(_LANE_SEP)
                log.warning(
                    "webhook lane failed", extra={"tenant_id": tenant, "endpoint_id": endpoint, "error": str(e)}
                )

        client: httpx.AsyncClient | None = None  # made for the first delivery claimed
        try:
            while not stop.is_set():
                wake.clear()
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + self.purge_seconds
                    try:
                        await self.purge()
                    except Exception as e:
                        log.warning("webhook log purge failed", extra={"error": str(e)})
                try:
                    claimed = await self.claim(busy=list(lanes))
                except Exception as e:
                    log.warning("webhook claim failed", extra={"error": str(e)})
                    claimed = {}
                for key, rows in claimed.items():
                    if client is None:
                        client = self.client()
                    lanes[key] = asyncio.create_task(self._lane(client, rows, stop), name=f"webhooks {key!r}")
                    lanes[key].add_done_callback(functools.partial(lane_done, key))
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
        if client is not None:
            await client.aclose()

    async def deliver_due(self) -> int:
        """One round (tests, operators): claim what is due, send it (endpoints concurrently), record."""
        stop = asyncio.Event()
        async with self.client() as client:
            claimed = await self.claim()
            await asyncio.gather(*(self._lane(client, rows, stop) for rows in claimed.values()))
        return sum(len(rows) for rows in claimed.values())

    async def purge(self) -> int:
        """Delete finished deliveries (and their attempts) created before the retention; how many."""
        cutoff = self.clock() - self.retention
        total = 0
        while True:
            async with self.engine.begin() as conn:
                n = (await conn.execute(_PURGE, {"cutoff": cutoff, "batch": PURGE_BATCH})).rowcount
            total += n
            if n < PURGE_BATCH:
                return total

    async def claim(self, busy: Sequence[str] = ()) -> dict[str, list[Any]]:
        """Lease due deliveries by endpoint (keys: :func:`lane_key`), the earliest due first; none
        for ``busy`` endpoints. The cost grows with the number of endpoints with pending
        deliveries, not with the backlog of one of them."""
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
            live = [r for r in rows if r.attempts < MAX_ATTEMPTS]
            lanes = set(list(dict.fromkeys(lane_key(r.tenant_id, r.endpoint_id) for r in live))[:free])
            ids = [r.id for r in live if lane_key(r.tenant_id, r.endpoint_id) in lanes]
            if not ids:
                return {}
            leased = (
                await conn.execute(
                    sa.update(D)
                    .where(D.c.id.in_(ids))
                    .values(next_attempt_at=sa.func.now() + self.lease)
                    .returning(
                        D.c.id, D.c.tenant_id, D.c.endpoint_id, D.c.event_id, D.c.url, D.c.body, D.c.next_attempt_at
                    )
                )
            ).all()
        order = {id_: n for n, id_ in enumerate(ids)}
        claimed: dict[str, list[Any]] = {}
        for row in sorted(leased, key=lambda r: order[r.id]):
            claimed.setdefault(lane_key(row.tenant_id, row.endpoint_id), []).append(row)
        return claimed

    async def _lane(self, client: httpx.AsyncClient, rows: list[Any], stop: asyncio.Event) -> None:
        """An endpoint's claimed deliveries, in the order they fell due, ``parallel_per_endpoint``
        at a time: one at a time, a busy tenant's own webhooks fell behind its events (~30 a second
        on two cores, each costing a call and two short transactions; scenario 10). A slow endpoint
        still holds only its own lane. Stopping, those not yet started are given back. The
        endpoint (URL, scheme, valid secrets) is read once for the lane."""
        slots = asyncio.Semaphore(self.parallel_per_endpoint)
        endpoint = await self._endpoint(rows[0])

        async def one(row: Any) -> None:
            async with slots:
                if stop.is_set():
                    await self._release([row])
                    return
                started = await self._start(row)
                if started is None:
                    return  # the lease was taken over by another worker, or the delivery ended
                target = _Target(
                    started[0], started[1], endpoint.url or row.url, endpoint.scheme, endpoint.secrets,
                    endpoint.refused,
                )  # fmt: skip
                outcome = await self._attempt(client, row, target)
                await self._record(row, target, outcome)

        await asyncio.gather(*(one(row) for row in rows))

    async def _endpoint(self, row: Any) -> _Endpoint:
        """What a call to ``row``'s endpoint needs: its current URL, scheme and valid secrets (the
        tenant-wide URL: the tenant's secret, the deprecated scheme)."""
        if row.endpoint_id == TENANT_URL:
            secret = await self.secret(row.tenant_id)
            if not secret:
                return _Endpoint(None, "legacy", (), "no webhook secret for the tenant")
            return _Endpoint(None, "legacy", (secret,))
        async with self.engine.connect() as conn:
            endpoint = (
                await conn.execute(
                    sa.select(E.c.url, E.c.signature_scheme, E.c.disabled_at).where(
                        E.c.id == row.endpoint_id, E.c.tenant_id == row.tenant_id
                    )
                )
            ).one_or_none()
            if endpoint is None or endpoint.disabled_at is not None:
                return _Endpoint(None, "standard", (), DISABLED)
            stored = (
                await conn.execute(
                    sa.select(S.c.secret, S.c.expires_at)
                    .where(S.c.endpoint_id == row.endpoint_id)
                    .order_by(S.c.id.desc())
                    .limit(8)
                )
            ).all()
        secrets_ = tuple(valid_secrets([(s.secret, s.expires_at) for s in stored], self.clock()))
        refused = None if secrets_ else "no valid secret for the endpoint"
        return _Endpoint(endpoint.url, endpoint.signature_scheme, secrets_, refused)

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

    async def _record(self, row: Any, target: _Target, outcome: _Outcome) -> None:
        values: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": outcome.error}
        # 410: the endpoint is gone for good; an endpoint is disabled, the tenant-wide URL (which has
        # no state of its own) only fails this delivery.
        gone = disables_endpoint(outcome.status_code)
        if outcome.delivered:
            values |= {"status": "delivered", "delivered_at": sa.func.now(), "last_error": None}
        elif gone and row.endpoint_id == TENANT_URL:
            values |= {"status": "failed", "last_error": "HTTP 410: the URL is gone"}
        elif gone:
            values |= {"status": "failed", "last_error": "HTTP 410: the endpoint is gone; it was disabled"}
        else:
            wait = None if target.refused == DISABLED else next_wait(target.attempts, outcome.retry_after, self.rand)
            if wait is None:
                values["status"] = "failed"
            else:
                values["next_attempt_at"] = sa.func.now() + wait
        # The outcome and its attempt-log row in one statement (one round trip); nothing when the
        # lease was taken over (the other worker's outcome counts).
        recorded = (
            sa.update(D)
            .where(D.c.id == row.id, D.c.status == "pending", D.c.next_attempt_at == target.token)
            .values(**values)
            .returning(D.c.id)
            .cte("recorded")
        )
        log_row = sa.select(
            recorded.c.id,
            sa.literal(target.attempts, sa.Integer),
            sa.literal(outcome.started_at, sa.DateTime(timezone=True)),
            sa.literal(outcome.latency_ms, sa.Integer),
            sa.literal(outcome.status_code, sa.Integer),
            sa.literal(outcome.error, sa.Text),
        )
        columns = ["delivery_id", "attempt", "started_at", "latency_ms", "status_code", "error"]
        async with self.engine.begin() as conn:
            done = (
                await conn.execute(sa.insert(A).from_select(columns, log_row).returning(A.c.delivery_id))
            ).one_or_none()
            if done is not None and gone and row.endpoint_id != TENANT_URL:
                await disable_endpoint(conn, row.tenant_id, row.endpoint_id, f"HTTP 410 from {target.url}"[:500])

    async def _attempt(self, client: httpx.AsyncClient, row: Any, target: _Target) -> _Outcome:
        import httpx  # loaded by the client already

        started = self.clock()
        if target.refused:
            return _Outcome(started, error=target.refused)
        try:
            check_url_shape(target.url)
        except UnsafeURL as e:
            return _Outcome(started, error=f"refused: {e}"[:500])
        headers = {"content-type": "application/cloudevents+json"}
        if target.scheme == "legacy":
            headers |= legacy_headers(row.event_id, started, row.body, target.secrets[0])
        else:
            headers |= standard_headers(row.event_id, started, row.body, target.secrets)
        t0 = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - t0) * 1000)

        try:
            r = await bounded_request(
                client,
                "POST",
                target.url,
                deadline=self.deadline,
                max_bytes=self.max_response_bytes,
                headers=headers,
                content=row.body,
            )
        except UnsafeURL as e:
            return _Outcome(started, error=f"refused: {e}"[:500], latency_ms=took())
        except TimeoutError:
            return _Outcome(started, error=f"no complete answer within {self.deadline:g} s", latency_ms=took())
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            return _Outcome(started, error=f"{type(e).__name__}: {e}"[:500], latency_ms=took())
        except Exception as e:  # whatever a partner's answer provokes is this attempt's failure
            log.warning("webhook: unexpected failure", extra={"delivery_id": row.id}, exc_info=True)
            return _Outcome(started, error=f"{type(e).__name__}: {e}"[:500], latency_ms=took())
        latency = took()
        if 200 <= r.status_code < 300:
            return _Outcome(started, status_code=r.status_code, latency_ms=latency)
        return _Outcome(
            started,
            status_code=r.status_code,
            error=f"HTTP {r.status_code}",
            latency_ms=latency,
            retry_after=retry_after(r.headers.get("retry-after"), self.clock()),
        )


async def disable_endpoint(conn: Any, tenant_id: str, endpoint_id: str, reason: str) -> None:
    """Stop an endpoint (410 from it): its pending deliveries fail; new events skip it. An admin
    re-enables it (and may replay what it missed)."""
    await conn.execute(
        sa.update(E)
        .where(E.c.id == endpoint_id, E.c.tenant_id == tenant_id, E.c.disabled_at.is_(None))
        .values(disabled_at=sa.func.now(), disabled_reason=reason, updated_at=sa.func.now())
    )
    await conn.execute(
        sa.update(D)
        .where(D.c.tenant_id == tenant_id, D.c.endpoint_id == endpoint_id, D.c.status == "pending")
        .values(status="failed", last_error="the endpoint was disabled")
    )


async def _nap(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Until ``stop`` or ``wake`` is set, or ``seconds`` pass."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
