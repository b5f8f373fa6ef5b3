"""Standard Webhooks in the deliverer (issue 14): real PostgreSQL, real HTTP receivers on loopback
that verify with the ``standardwebhooks`` library. Rotation overlap, event-type filters, the retry
schedule and Retry-After, 410, the attempt log and the retention purge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.base import Envelope
from advocacy_common.events.content import ContentArchived, ContentPublished
from advocacy_common.partner_feed import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_ENDPOINT_SECRETS,
    WEBHOOK_ENDPOINTS,
    PartnerForwarder,
    WebhookDeliverer,
    add_partner_feed_tables,
)
from advocacy_common.webhooks import MAX_ATTEMPTS, RETRY_AFTER_CAP, new_secret
from advocacy_content.features import partner
from tests.support.snapshots import CommitBetweenReads
from tests.support.webhooks import VerifyingReceiver, serve

META = sa.MetaData()
add_partner_feed_tables(META)
D, E, S, A = WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS, WEBHOOK_ENDPOINT_SECRETS, WEBHOOK_ATTEMPTS
PUBLISHED, ARCHIVED = ContentPublished.TYPE, ContentArchived.TYPE


@pytest.fixture
async def engine(new_database: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(new_database)
    async with eng.begin() as conn:
        await conn.run_sync(META.create_all)
    yield eng
    await eng.dispose()


async def no_tenant_secret(_: str) -> str | None:
    return None


def lowest(a: float, b: float) -> float:
    return a


def highest(a: float, b: float) -> float:
    return b


async def endpoint(
    engine: AsyncEngine,
    tenant: str,
    url: str,
    *secrets: tuple[str, datetime | None],
    types: list[str] | None = None,
    scheme: str = "standard",
) -> str:
    ep = "ep_" + uuid.uuid4().hex[:12]
    at = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(E).values(
                id=ep, tenant_id=tenant, partner_id="crm", url=url, event_types=types, signature_scheme=scheme,
                created_at=at, updated_at=at,
            )
        )  # fmt: skip
        for secret, expires in secrets:
            await conn.execute(sa.insert(S).values(endpoint_id=ep, secret=secret, created_at=at, expires_at=expires))
    return ep


async def queue(engine: AsyncEngine, tenant: str, ep: str, url: str, event_id: str, **extra: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(D).values(
                tenant_id=tenant, endpoint_id=ep, event_id=event_id, event_type=PUBLISHED, url=url,
                body=b'{"id":"%s"}' % event_id.encode(), **extra,
            )
        )  # fmt: skip


async def delivery(engine: AsyncEngine, event_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(D).where(D.c.event_id == event_id))).one()


async def test_during_a_rotation_both_signatures_verify_and_after_it_only_the_new(
    engine: AsyncEngine, new_tenant: str
) -> None:
    old, new = new_secret(), new_secret()
    partner = VerifyingReceiver(old)  # has not switched yet
    clock = [datetime.now(UTC)]
    deliverer = WebhookDeliverer(engine, no_tenant_secret, allow_private=True, clock=lambda: clock[0])
    async with serve(partner) as url:
        ep = await endpoint(engine, new_tenant, url, (new, None), (old, clock[0] + timedelta(hours=24)))
        await queue(engine, new_tenant, ep, url, "e1")
        assert await deliverer.deliver_due() == 1
        partner.secrets = [new]  # the partner switches during the overlap
        await queue(engine, new_tenant, ep, url, "e2")
        assert await deliverer.deliver_due() == 1
        # after the overlap, the old secret no longer signs: a partner still holding only it fails
        clock[0] += timedelta(hours=24, seconds=1)
        late = VerifyingReceiver(old)
        async with serve(late) as late_url:
            ep2 = await endpoint(engine, new_tenant, late_url, (new, None), (old, clock[0] - timedelta(seconds=1)))
            await queue(engine, new_tenant, ep2, late_url, "e3")
            await deliverer.deliver_due()
    assert [i for i, _ in partner.verified] == ["e1", "e2"] and partner.refused == 0
    assert len(partner.requests[0]["webhook-signature"].split(" ")) == 2
    assert (await delivery(engine, "e1")).status == (await delivery(engine, "e2")).status == "delivered"
    assert late.verified == [] and late.refused == 1
    assert len(late.requests[0]["webhook-signature"].split(" ")) == 1


async def test_an_endpoint_receives_only_the_types_it_chose(engine: AsyncEngine, new_tenant: str) -> None:
    everything = await endpoint(engine, new_tenant, "https://all.example/h", (new_secret(), None))
    archived_only = await endpoint(engine, new_tenant, "https://arch.example/h", (new_secret(), None), types=[ARCHIVED])
    disabled = await endpoint(engine, new_tenant, "https://off.example/h", (new_secret(), None))
    async with engine.begin() as conn:
        await conn.execute(sa.update(E).where(E.c.id == disabled).values(disabled_at=sa.func.now()))
    now = datetime.now(UTC)
    events: list[Envelope[Any]] = [
        new_event("/advocacy/content", new_tenant, ContentPublished(content_id="c1", title="t", url="https://e.com/", slug="t", published_at=now)),
        new_event("/advocacy/content", new_tenant, ContentArchived(content_id="c1", archived_at=now)),
    ]  # fmt: skip
    forwarder = PartnerForwarder(lambda: None, bootstrap="unused")
    async with make_sessionmaker(engine)() as session, session.begin():
        await forwarder._queue_webhooks(session, [(e, {}) for e in events])
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(D.c.endpoint_id, D.c.event_type).order_by(D.c.id))).all()
    assert sorted(rows) == sorted([(everything, PUBLISHED), (everything, ARCHIVED), (archived_only, ARCHIVED)])


async def test_retries_follow_the_schedule_and_honour_a_bounded_retry_after(
    engine: AsyncEngine, new_tenant: str
) -> None:
    secret = new_secret()
    busy = VerifyingReceiver(secret, status=503, retry_after="600")
    async with serve(busy) as url:
        ep = await endpoint(engine, new_tenant, url, (secret, None))
        await queue(engine, new_tenant, ep, url, "r1")
        before = datetime.now(UTC)
        await WebhookDeliverer(engine, no_tenant_secret, allow_private=True, rand=lowest).deliver_due()
        row = await delivery(engine, "r1")
        # the schedule alone would wait 1 s (rand=lowest); the partner asked for 10 minutes
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 503)
        assert row.next_attempt_at - before >= timedelta(seconds=595)
        busy.retry_after = "999999999"  # bounded
        async with engine.begin() as conn:
            await conn.execute(sa.update(D).values(next_attempt_at=sa.func.now()))
        before = datetime.now(UTC)
        await WebhookDeliverer(engine, no_tenant_secret, allow_private=True, rand=lowest).deliver_due()
        row = await delivery(engine, "r1")
        assert RETRY_AFTER_CAP <= row.next_attempt_at - before <= RETRY_AFTER_CAP + timedelta(seconds=5)
        busy.retry_after = None  # the schedule: step 3 is 5 minutes (rand=highest)
        async with engine.begin() as conn:
            await conn.execute(sa.update(D).values(next_attempt_at=sa.func.now()))
        before = datetime.now(UTC)
        await WebhookDeliverer(engine, no_tenant_secret, allow_private=True, rand=highest).deliver_due()
        row = await delivery(engine, "r1")
        assert timedelta(minutes=5) <= row.next_attempt_at - before <= timedelta(minutes=5, seconds=5)
        # the last attempt fails the delivery
        async with engine.begin() as conn:
            await conn.execute(sa.update(D).values(next_attempt_at=sa.func.now(), attempts=MAX_ATTEMPTS - 1))
        await WebhookDeliverer(engine, no_tenant_secret, allow_private=True).deliver_due()
        row = await delivery(engine, "r1")
        assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    async with engine.connect() as conn:
        log = (await conn.execute(sa.select(A).where(A.c.delivery_id == row.id).order_by(A.c.id))).all()
    assert [(a.attempt, a.status_code, a.error) for a in log] == [
        (1, 503, "HTTP 503"), (2, 503, "HTTP 503"), (3, 503, "HTTP 503"), (MAX_ATTEMPTS, 503, "HTTP 503")
    ]  # fmt: skip
    assert all(a.latency_ms is not None and a.latency_ms >= 0 for a in log)


async def test_a_410_disables_the_endpoint_and_ends_its_pending_deliveries(
    engine: AsyncEngine, new_tenant: str
) -> None:
    secret = new_secret()
    gone = VerifyingReceiver(secret, status=410)
    async with serve(gone) as url:
        ep = await endpoint(engine, new_tenant, url, (secret, None))
        await queue(engine, new_tenant, ep, url, "g1")
        await queue(engine, new_tenant, ep, url, "g2", next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
        await WebhookDeliverer(engine, no_tenant_secret, allow_private=True).deliver_due()
    assert len(gone.verified) == 1
    async with engine.connect() as conn:
        state = (await conn.execute(sa.select(E.c.disabled_at, E.c.disabled_reason).where(E.c.id == ep))).one()
    assert state.disabled_at is not None and "410" in state.disabled_reason
    g1, g2 = await delivery(engine, "g1"), await delivery(engine, "g2")
    assert (g1.status, g1.last_status_code) == ("failed", 410)
    assert (g2.status, g2.attempts) == ("failed", 0)


async def test_the_log_is_purged_after_its_retention(engine: AsyncEngine, new_tenant: str) -> None:
    ep = await endpoint(engine, new_tenant, "https://p.example/h", (new_secret(), None))
    old = datetime.now(UTC) - timedelta(days=31)
    await queue(engine, new_tenant, ep, "https://p.example/h", "old-done", status="delivered", created_at=old)
    await queue(engine, new_tenant, ep, "https://p.example/h", "old-failed", status="failed", created_at=old)
    await queue(engine, new_tenant, ep, "https://p.example/h", "old-pending", created_at=old,
                next_attempt_at=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    await queue(engine, new_tenant, ep, "https://p.example/h", "recent", status="delivered")
    async with engine.begin() as conn:
        first = (await conn.execute(sa.select(D.c.id).where(D.c.event_id == "old-done"))).scalar_one()
        await conn.execute(sa.insert(A).values(delivery_id=first, attempt=1, started_at=old, status_code=204))
    deliverer = WebhookDeliverer(engine, no_tenant_secret, retention=timedelta(days=30))
    assert await deliverer.purge() == 2
    async with engine.connect() as conn:
        left = set((await conn.execute(sa.select(D.c.event_id))).scalars())
        attempts = (await conn.execute(sa.select(sa.func.count()).select_from(A))).scalar_one()
    assert left == {"old-pending", "recent"} and attempts == 0


async def test_a_410_from_the_deprecated_tenant_url_fails_the_delivery_without_retrying(
    engine: AsyncEngine, new_tenant: str
) -> None:
    async def tenant_secret(_: str) -> str:
        return "legacy-secret"

    async def answer_410(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await receive()
            await send({"type": "http.response.start", "status": 410, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    async with serve(answer_410) as url:
        await queue(engine, new_tenant, "", url, "t1")
        await WebhookDeliverer(engine, tenant_secret, allow_private=True).deliver_due()
    row = await delivery(engine, "t1")
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 410)


async def test_a_deliverys_count_of_attempts_agrees_with_its_log(engine: AsyncEngine, new_tenant: str) -> None:
    """GET /v1/partner/webhook-deliveries/{id} reads the delivery, then its log: a try the deliverer
    records in between is in both or in neither (it was in the log only: 1 attempt beside two)."""
    ep = await endpoint(engine, new_tenant, "https://p.example/h", (new_secret(), None))
    await queue(engine, new_tenant, ep, "https://p.example/h", "e1", attempts=1)
    row = await delivery(engine, "e1")
    at = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(A).values(delivery_id=row.id, attempt=1, started_at=at, status_code=500))

    async def second_try() -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(A).values(delivery_id=row.id, attempt=2, started_at=at, status_code=503))
            await conn.execute(sa.update(D).where(D.c.id == row.id).values(attempts=2))

    admin = Principal(sub="boss", tenant_id=new_tenant, roles=frozenset({"admin"}))
    async with make_sessionmaker(engine)() as session, session.begin():
        racing = CommitBetweenReads(session, "webhook_deliveries", second_try)
        got = await partner.get_delivery(racing, admin, str(row.id))  # type: ignore[arg-type]
    assert racing.committed
    assert (got["attempts"], [a["attempt"] for a in got["attempt_log"]]) == (1, [1]), got
