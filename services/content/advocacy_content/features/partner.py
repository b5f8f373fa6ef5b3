"""The partner feed, hosted by content's worker: content owns the tenant's webhook endpoints.

The forwarder (``advocacy_common.partner_feed``) copies partner-visible events to the tenant's
topic and queues a webhook delivery per endpoint whose filter takes the event; the deliverer POSTs
them signed (Standard Webhooks; the deprecated scheme for the tenant-wide URL and endpoints that
ask for it). Admins register endpoints (several per tenant, each for a partner), rotate their
secrets with an overlap, re-enable an endpoint a 410 disabled, read the delivery log, redeliver one
delivery and replay an endpoint's time range.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit
from advocacy_common.auth import Principal
from advocacy_common.db import one_snapshot
from advocacy_common.errors import Conflict, NotFound, Unprocessable
from advocacy_common.pagination import PageParams, as_int, encode_cursor, parse_cursor
from advocacy_common.partner_feed import (
    FEED_TOPICS,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_ENDPOINT_SECRETS,
    WEBHOOK_ENDPOINTS,
    PartnerForwarder,
    WebhookDeliverer,
)
from advocacy_common.runtime import LateConsumer, Runtime
from advocacy_common.ssrf import UnsafeURL, check_url_shape
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_common.webhooks import new_secret, partner_event_types
from advocacy_content.adapters.events import now
from advocacy_content.adapters.tombstones import TOMBSTONES
from advocacy_content.db import WebhookDeliveries, WebhookSecrets
from advocacy_content.schemas import check_url
from advocacy_content.settings import ContentSettings

GROUP = "content-partner-feed"
D = WebhookDeliveries
E = WEBHOOK_ENDPOINTS
S = WEBHOOK_ENDPOINT_SECRETS
A = WEBHOOK_ATTEMPTS

# Bounds on what an admin's request may cost.
MAX_ENDPOINTS_PER_TENANT = 20
MAX_REPLAY_RANGE = timedelta(days=7)
MAX_REPLAY_DELIVERIES = 1000
MAX_ATTEMPTS_SHOWN = 100


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
        retention=timedelta(days=settings.webhook_log_retention_days),
    )
    await deliverer.run(stop)


async def rotate_secret(session: AsyncSession, who: Principal) -> dict[str, Any]:
    """A new secret for the tenant-wide URL (deprecated scheme); the old one stops working at once.
    Shown only in this answer. Endpoints rotate with an overlap instead (:func:`rotate_endpoint_secret`)."""
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


_DELIVERY_COLUMNS = (
    D.c.id, D.c.endpoint_id, D.c.event_id, D.c.event_type, D.c.url, D.c.status, D.c.attempts,
    D.c.last_status_code, D.c.last_error, D.c.created_at, D.c.next_attempt_at, D.c.delivered_at,
)  # fmt: skip


def _delivery(r: Any) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "endpoint_id": r.endpoint_id or None,
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


async def list_deliveries(
    session: AsyncSession, who: Principal, page: PageParams, status: str | None, endpoint_id: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = sa.select(*_DELIVERY_COLUMNS).where(D.c.tenant_id == who.tenant_id)
    if status:
        stmt = stmt.where(D.c.status == status)
    if endpoint_id is not None:
        stmt = stmt.where(D.c.endpoint_id == endpoint_id)
    if page.cursor:
        (before,) = parse_cursor(page.cursor, as_int)
        stmt = stmt.where(D.c.id < before)
    rows = (await session.execute(stmt.order_by(D.c.id.desc()).limit(page.limit + 1))).all()
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor([rows[-1].id])
    return [_delivery(r) for r in rows], cursor


def _delivery_pk(delivery_id: str) -> int:
    if not (delivery_id.isascii() and delivery_id.isdigit() and len(delivery_id) <= 18):
        raise NotFound("no such delivery")
    return int(delivery_id)


async def get_delivery(session: AsyncSession, who: Principal, delivery_id: str) -> dict[str, Any]:
    """One delivery and its attempts, newest first (at most MAX_ATTEMPTS_SHOWN), from one snapshot:
    its ``attempts`` count and status agree with the log even while the deliverer records a try."""
    pk = _delivery_pk(delivery_id)
    await one_snapshot(session)
    return await _delivery_with_log(session, who, pk)


async def _delivery_with_log(session: AsyncSession, who: Principal, pk: int) -> dict[str, Any]:
    """The delivery and its attempt log, in the caller's transaction (a snapshot must be the
    transaction's first statement: redeliver answers after its own writes, under its row lock)."""
    row = (
        await session.execute(sa.select(*_DELIVERY_COLUMNS).where(D.c.id == pk, D.c.tenant_id == who.tenant_id))
    ).one_or_none()
    if row is None:
        raise NotFound("no such delivery")
    attempts = (
        await session.execute(
            sa.select(A.c.attempt, A.c.started_at, A.c.latency_ms, A.c.status_code, A.c.error)
            .where(A.c.delivery_id == pk)
            .order_by(A.c.id.desc())
            .limit(MAX_ATTEMPTS_SHOWN)
        )
    ).all()
    return _delivery(row) | {"attempt_log": [dict(a._mapping) for a in attempts]}


# -- endpoints --------------------------------------------------------------------------------------


def _endpoint(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "partner_id": r.partner_id,
        "url": r.url,
        "event_types": None if r.event_types is None else list(r.event_types),
        "signature_scheme": r.signature_scheme,
        "enabled": r.disabled_at is None,
        "disabled_at": r.disabled_at,
        "disabled_reason": r.disabled_reason,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _checked_url(url: str) -> str:
    try:
        canonical = check_url(url)
        check_url_shape(canonical)
    except (ValueError, UnsafeURL) as e:
        raise Unprocessable.field("url", str(e)) from e
    return canonical


def _checked_types(types: Sequence[str] | None) -> list[str] | None:
    """The filter, each type partner-visible (422 naming the first that is not), without repeats."""
    if types is None:
        return None
    known = partner_event_types()
    for i, t in enumerate(types):
        if t not in known:
            raise Unprocessable.field(
                f"event_types.{i}", f"{t[:100]!r} is not a partner-visible event type (docs/partners.md lists them)"
            )
    return sorted(set(types))


async def _endpoint_row(session: AsyncSession, who: Principal, endpoint_id: str, *, lock: bool = False) -> Any:
    stmt = sa.select(E).where(E.c.id == endpoint_id, E.c.tenant_id == who.tenant_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        raise NotFound("no such webhook endpoint")
    return row


async def create_endpoint(
    session: AsyncSession,
    who: Principal,
    *,
    partner_id: str,
    url: str,
    event_types: Sequence[str] | None,
    signature_scheme: str,
) -> dict[str, Any]:
    """A new endpoint and its first secret (shown only in this answer)."""
    values = {
        "partner_id": partner_id,
        "url": _checked_url(url),
        "event_types": _checked_types(event_types),
        "signature_scheme": signature_scheme,
    }
    # One at a time per tenant, so the cap holds under concurrent creations.
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("webhook_endpoints:" + who.tenant_id)))
    )
    count = await session.scalar(sa.select(sa.func.count()).select_from(E).where(E.c.tenant_id == who.tenant_id))
    if (count or 0) >= MAX_ENDPOINTS_PER_TENANT:
        raise Unprocessable(f"a tenant has at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints")
    at = now()
    endpoint_id = "ep_" + secrets.token_hex(8)
    secret = new_secret()
    await session.execute(
        sa.insert(E).values(id=endpoint_id, tenant_id=who.tenant_id, created_at=at, updated_at=at, **values)
    )
    await session.execute(sa.insert(S).values(endpoint_id=endpoint_id, secret=secret, created_at=at))
    await audit.record(
        session, who.tenant_id, who.sub, "webhook_endpoint.created", target=endpoint_id, after=values, at=at
    )
    row = await _endpoint_row(session, who, endpoint_id)
    return _endpoint(row) | {"secret": secret}


async def list_endpoints(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    rows = (
        await session.execute(sa.select(E).where(E.c.tenant_id == who.tenant_id).order_by(E.c.created_at, E.c.id))
    ).all()
    return [_endpoint(r) for r in rows]


async def get_endpoint(session: AsyncSession, who: Principal, endpoint_id: str) -> dict[str, Any]:
    return _endpoint(await _endpoint_row(session, who, endpoint_id))


async def update_endpoint(
    session: AsyncSession, who: Principal, endpoint_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change the URL, filter (``None``: every type), scheme, or state (``enabled``: re-enable one a
    410 disabled, or disable one). Only the fields given change."""
    row = await _endpoint_row(session, who, endpoint_id, lock=True)
    values: dict[str, Any] = {}
    if "url" in changes:
        values["url"] = _checked_url(changes["url"])
    if "event_types" in changes:
        values["event_types"] = _checked_types(changes["event_types"])
    if "signature_scheme" in changes:
        values["signature_scheme"] = changes["signature_scheme"]
    if "enabled" in changes:
        if changes["enabled"] and row.disabled_at is not None:
            values |= {"disabled_at": None, "disabled_reason": None}
        elif not changes["enabled"] and row.disabled_at is None:
            values |= {"disabled_at": now(), "disabled_reason": f"disabled by {who.sub}"[:500]}
    if not values:
        return _endpoint(row)
    at = now()
    await session.execute(sa.update(E).where(E.c.id == endpoint_id).values(updated_at=at, **values))
    if values.get("disabled_at") is not None:  # an admin's disable ends its pending deliveries too
        await session.execute(
            sa.update(D)
            .where(D.c.tenant_id == who.tenant_id, D.c.endpoint_id == endpoint_id, D.c.status == "pending")
            .values(status="failed", last_error="the endpoint was disabled")
        )
    before = {k: _endpoint(row)[k if k != "disabled_at" else "enabled"] for k in values if k != "disabled_reason"}
    after = {k: (v if k != "disabled_at" else v is None) for k, v in values.items() if k != "disabled_reason"}
    await audit.record(
        session,
        who.tenant_id,
        who.sub,
        "webhook_endpoint.updated",
        target=endpoint_id,
        before=before,
        after=after,
        at=at,
    )
    return _endpoint(await _endpoint_row(session, who, endpoint_id))


async def rotate_endpoint_secret(
    session: AsyncSession, who: Principal, endpoint_id: str, overlap: timedelta
) -> dict[str, Any]:
    """A new secret; the current one keeps signing until ``overlap`` has passed (both signatures are
    sent meanwhile), and any older one stops now. The new secret is shown only in this answer."""
    await _endpoint_row(session, who, endpoint_id, lock=True)
    at = now()
    until = at + overlap
    await session.execute(
        sa.update(S)
        .where(S.c.endpoint_id == endpoint_id, sa.or_(S.c.expires_at.is_(None), S.c.expires_at > at))
        .values(expires_at=sa.case((S.c.expires_at.is_(None), until), else_=at))
    )
    secret = new_secret()
    await session.execute(sa.insert(S).values(endpoint_id=endpoint_id, secret=secret, created_at=at))
    # Expired secrets sign nothing: keep only the few that may still be valid.
    await session.execute(sa.delete(S).where(S.c.endpoint_id == endpoint_id, S.c.expires_at <= at))
    await audit.record(
        session, who.tenant_id, who.sub, "webhook_endpoint.secret_rotated", target=endpoint_id,
        after={"previous_valid_until": until.isoformat()}, at=at,
    )  # fmt: skip
    return {"secret": secret, "rotated_at": at, "previous_valid_until": until if overlap else None}


# -- redelivery and replay ------------------------------------------------------------------------------


async def _requeue(session: AsyncSession, ids: list[int]) -> None:
    """Due again now, a fresh round of attempts; the attempt log keeps the earlier ones."""
    await session.execute(
        sa.update(D)
        .where(D.c.id.in_(ids))
        .values(status="pending", attempts=0, next_attempt_at=sa.func.now(), delivered_at=None, last_error=None)
    )


async def redeliver(session: AsyncSession, who: Principal, delivery_id: str) -> dict[str, Any]:
    """Send one delivery again (a delivered or failed one; a pending one is already going)."""
    pk = _delivery_pk(delivery_id)
    row = (
        await session.execute(
            sa.select(D.c.status, D.c.endpoint_id).where(D.c.id == pk, D.c.tenant_id == who.tenant_id).with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no such delivery")
    if row.status == "pending":
        raise Conflict("the delivery is pending already: it will be sent", code="already_pending")
    if row.endpoint_id and (await _endpoint_row(session, who, row.endpoint_id)).disabled_at is not None:
        raise Conflict("the endpoint is disabled: re-enable it first", code="endpoint_disabled")
    await _requeue(session, [pk])
    await audit.record(session, who.tenant_id, who.sub, "webhook_deliveries.replayed", target=str(pk), at=now())
    return await _delivery_with_log(session, who, pk)


async def replay(
    session: AsyncSession, who: Principal, endpoint_id: str, since: datetime, until: datetime
) -> dict[str, Any]:
    """Send again, once each, an endpoint's deliveries created in [since, until) that are delivered
    or failed (pending ones are going already, and are not sent twice). The range is at most
    MAX_REPLAY_RANGE and may hold at most MAX_REPLAY_DELIVERIES of them (422 otherwise)."""
    if until <= since:
        raise Unprocessable.field("until", "must be after since")
    if until - since > MAX_REPLAY_RANGE:
        raise Unprocessable.field("until", f"a replay covers at most {MAX_REPLAY_RANGE.days} days")
    endpoint = await _endpoint_row(session, who, endpoint_id)
    if endpoint.disabled_at is not None:
        raise Conflict("the endpoint is disabled: re-enable it first", code="endpoint_disabled")
    ids = list(
        (
            await session.scalars(
                sa.select(D.c.id)
                .where(
                    D.c.tenant_id == who.tenant_id,
                    D.c.endpoint_id == endpoint_id,
                    D.c.created_at >= since,
                    D.c.created_at < until,
                    D.c.status != "pending",
                )
                .order_by(D.c.created_at, D.c.id)
                .limit(MAX_REPLAY_DELIVERIES + 1)
                .with_for_update()
            )
        ).all()
    )
    if len(ids) > MAX_REPLAY_DELIVERIES:
        raise Unprocessable.field(
            "until", f"the range holds more than {MAX_REPLAY_DELIVERIES} deliveries: replay a shorter one"
        )
    if ids:
        await _requeue(session, ids)
    await audit.record(
        session, who.tenant_id, who.sub, "webhook_deliveries.replayed", target=endpoint_id,
        after={"since": since.isoformat(), "until": until.isoformat(), "deliveries": len(ids)}, at=now(),
    )  # fmt: skip
    return {"replayed": len(ids)}
