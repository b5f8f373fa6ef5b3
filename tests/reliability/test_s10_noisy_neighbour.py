"""Scenario 10: a noisy neighbour (issue 12). Hostile tenants drive every expensive path at once, at
the fixed rates below, while a good tenant runs normal traffic on the same four services.

Hostile, all at once for ``SECONDS``:

- policy: 2,000 blocked terms sharing a first word; shares with 3,000-character messages ending in
  a blocked term (a new employee each time, so none is answered from an existing share) and policy
  checks of 50,000 characters on content;
- poison settings: ``{"exchange_rates": {"USD": "1e2000000"}}`` (an event of ~2 MB once);
- webhooks: one hostile tenant's endpoint trickles a byte every 0.5 s, another's answers 1 GiB;
  each hostile share is an event for them;
- SSE: tickets and streams for invented teams (each a board that reads the database);
- redirects with 8 KB ``X-Forwarded-For`` headers;
- bodies of 2 MiB.

The good tenant, meanwhile: clicks on its links, new content reaching sharing, shares whose webhook
reaches its (well-behaved) endpoint.

Pass: the good tenant's redirect p99 under 500 ms (short) or 250 ms with a max under 2 s (full);
its content reaches sharing within 5 s and its webhooks arrive within 10 s of the share; no service
restarts, each stays under 300 MB RSS; every hostile request is answered, and never with a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_dev.devstack.broker import TansuBroker
from bench.redirect import offer, summary
from tests.support import contentflow
from tests.support.helpers import eventually
from tests.support.stackkit import PrivateStack, record, running_stack, sized
from tests.support.traffic import percentile, scrape, total, visitor_ip
from tests.support.webhooks import Misbehaving, serve_process, serve_raw

SECONDS = sized(20.0, 120.0)  # the good tenant's measured visits; the hostile load runs RAMP longer
RAMP = 3.0
# hostile rates, per second
SHARE_RATE = 4.0  # 4,000-character messages against 2,000 terms
CHECK_RATE = 4.0  # 50,000-character policy checks
POISON_RATE = 1.0
STREAM_RATE = 4.0  # a ticket and a stream with an invented team
XFF_RATE = 20.0  # redirects with an 8 KB X-Forwarded-For
BIG_BODY_RATE = 2.0  # 2 MiB bodies
# the good tenant
GOOD_CLICK_RATE = 10.0  # each click is also two webhooks (clicked, awarded) for the good endpoint
GOOD_CONTENT_EVERY = sized(8.0, 15.0)  # seconds between new content items (each then shared)

REDIRECT_P99 = sized(0.5, 0.25)
REDIRECT_MAX = sized(None, 2.0)
CONTENT_WITHIN = 5.0
WEBHOOK_WITHIN = 10.0
RSS_LIMIT = 300 * 2**20
# open loop: the generator never waits for a free connection (held streams keep theirs). An idle
# connection is dropped after 2 s, well before the services' keep-alive timeout (uvicorn's 5 s): at
# httpx's default of 5 s the generator reused connections the server was closing at that moment
# ("Server disconnected without sending a response", on a loaded machine), a client-side race.
UNPOOLED = httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=2.0)


@pytest.fixture
def noisy_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "s10",
        extra_env={"content": {"CONTENT_WEBHOOK_ALLOW_PRIVATE": "true"}},
    ) as s:
        yield s


class Peaks:
    """Peak RSS of every service process, sampled every 0.5 s."""

    def __init__(self, s: PrivateStack) -> None:
        self.s = s
        self.peak: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for svc in ("content", "sharing", "metrics", "gamification"):
                pid = self.s.process(svc).pid
                with contextlib.suppress(psutil.Error, TypeError):
                    rss = psutil.Process(pid).memory_info().rss
                    for child in psutil.Process(pid).children(recursive=True):  # a policy worker too
                        rss = max(rss, child.memory_info().rss)
                    self.peak[svc] = max(self.peak.get(svc, 0), rss)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def _webhook_hops(db_url: str, tenant: str) -> list[dict[str, Any]]:
    """Per good webhook: event time -> delivery row written -> delivered, in seconds."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    eng = create_async_engine(db_url)
    try:
        async with eng.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT event_type, body, created_at, delivered_at, attempts FROM webhook_deliveries "
                        "WHERE tenant_id = :t ORDER BY id"
                    ),
                    {"t": tenant},
                )
            ).all()
    finally:
        await eng.dispose()
    out = []
    for r in rows:
        event_time = datetime.fromisoformat(orjson.loads(r.body)["time"])
        out.append(
            {
                "type": r.event_type.rsplit(".", 2)[-2],
                "queued_s": round((r.created_at - event_time).total_seconds(), 2),
                "delivered_s": round((r.delivered_at - r.created_at).total_seconds(), 2) if r.delivered_at else None,
                "attempts": r.attempts,
            }
        )
    return out


async def _content_hops(content_db: str, sharing_db: str, tenant: str) -> list[dict[str, Any]]:
    """Per good content.published event: written -> taken by content's relay -> applied by sharing, in
    seconds (the outbox's created_at and published_at, sharing's inbox processed_at)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def query(url: str, sql: str, params: dict[str, Any]) -> list[Any]:
        eng = create_async_engine(url)
        try:
            async with eng.connect() as conn:
                return list((await conn.execute(text(sql), params)).all())
        finally:
            await eng.dispose()

    sent = await query(
        content_db,
        "SELECT event_id, created_at, published_at FROM outbox "
        "WHERE tenant_id = :t AND event_type LIKE '%content.published%' ORDER BY id",
        {"t": tenant},
    )
    applied = dict(
        await query(
            sharing_db,
            "SELECT event_id, processed_at FROM inbox WHERE event_id = ANY(:ids)",
            {"ids": [r.event_id for r in sent]},
        )
    )
    out = []
    for r in sent:
        at = applied.get(r.event_id)
        out.append(
            {
                "relayed_s": round((r.published_at - r.created_at).total_seconds(), 2) if r.published_at else None,
                "applied_s": round((at - r.published_at).total_seconds(), 2) if at and r.published_at else None,
            }
        )
    return out


async def at_rate(rate: float, stop: asyncio.Event, act: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Start ``act(i)`` every 1/rate seconds (open loop: a slow answer does not slow the offer)."""
    tasks: set[asyncio.Task[None]] = set()
    start, i = time.monotonic(), 0
    while not stop.is_set():
        task = asyncio.create_task(act(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    if tasks:
        await asyncio.wait(tasks, timeout=30)


async def test_a_hostile_tenant_does_not_slow_or_stop_a_good_one(noisy_stack: PrivateStack, tmp_path: Path) -> None:
    s = noisy_stack
    run = uuid.uuid4().hex[:6]
    good, bad, bad2 = f"good-{run}", f"bad-{run}", f"bad2-{run}"
    starts = {svc: s.process(svc).starts for svc in ("content", "sharing", "metrics", "gamification")}
    hostile: Counter[str] = Counter()  # "<path> <status>"
    errors: dict[str, str] = {}  # the first message of each kind of transport error
    trickle, huge = Misbehaving("trickle", interval=0.5), Misbehaving("huge", size=1 << 30)

    def admin(tenant: str, svc: str) -> httpx.AsyncClient:
        return s.client(svc, s.token(tenant, "boss", "admin"), timeout=30.0)

    async with (
        serve_raw(trickle) as trickle_url,
        serve_raw(huge) as huge_url,
        serve_process(tmp_path / "good-webhooks.jsonl") as receiver,
        admin(good, "content") as good_content,
        admin(bad, "content") as bad_content,
        admin(bad2, "content") as bad2_content,
        httpx.AsyncClient(base_url=s.url("sharing"), timeout=30.0, limits=UNPOOLED) as sharing,
        httpx.AsyncClient(base_url=s.url("gamification"), timeout=30.0, limits=UNPOOLED) as gam,
    ):
        # -- set-up: webhooks, content, the hostile policy ------------------------------------------
        for c, url in ((good_content, receiver.url), (bad_content, trickle_url), (bad2_content, huge_url)):
            assert (await c.put("/v1/tenant/settings", json={"partner_webhook_url": url})).status_code == 200
            assert (await c.post("/v1/partner/webhook-secret/rotate")).status_code == 200
        terms = [f"free {i:04d} offer" for i in range(2000)]
        r = await bad_content.put("/v1/policy", json={"blocked_terms": terms})
        assert r.status_code == 200, r.text

        async def publish(c: httpx.AsyncClient, title: str) -> str:
            r = await c.post("/v1/content", json={"title": title, "url": f"https://example.com/{uuid.uuid4().hex}"})
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        async def share(tenant: str, emp: str, content_id: str, message: str | None = None) -> httpx.Response:
            token = s.token(tenant, emp, "employee", team="t")
            body: dict[str, Any] = {"content_id": content_id, "network": "linkedin"}
            if message is not None:
                body["message"] = message
            return await sharing.post("/v1/shares", json=body, headers={"Authorization": f"Bearer {token}"})

        async def shared_when_known(tenant: str, emp: str, content_id: str) -> str:
            async def attempt() -> str | None:
                r = await share(tenant, emp, content_id)
                if r.status_code == 404:
                    return None
                assert r.status_code in (200, 201), r.text
                return str(r.json()["code"])

            return str(await eventually(attempt, timeout=60, interval=0.1, what="sharing learns the content"))

        bad_item, bad2_item = await publish(bad_content, "Hostile"), await publish(bad2_content, "Hostile 2")
        good_codes = [await shared_when_known(good, f"g{i}", await publish(good_content, "Good")) for i in range(3)]
        bad_code = await shared_when_known(bad, "b0", bad_item)
        await shared_when_known(bad2, "c0", bad2_item)

        # -- the hostile load ------------------------------------------------------------------------
        stop = asyncio.Event()
        peaks = Peaks(s)
        words = ("free", "offer", "limited", "today", "win", "now")
        long_message = " ".join(words[i % len(words)] for i in range(700))[:4000]
        # within LinkedIn's 3,000 characters, so the matcher judges it (and finds the last words)
        share_message = long_message[:2980] + " free 1999 offer"

        async def note(kind: str, call: Awaitable[httpx.Response]) -> None:
            try:
                r = await call
                hostile[f"{kind} {r.status_code}"] += 1
            except httpx.HTTPError as e:
                hostile[f"{kind} {type(e).__name__}"] += 1
                errors.setdefault(f"{kind} {type(e).__name__}", repr(e)[:300])

        async def hostile_share(i: int) -> None:
            tenant, item = (bad, bad_item) if i % 2 == 0 else (bad2, bad2_item)
            await note("share", share(tenant, f"h{i}", item, share_message))

        async def hostile_check(i: int) -> None:
            text = (long_message + " ") * 12  # ~50,000 characters
            await note(
                "policy-check", bad_content.post("/v1/policy/check", json={"network": "x", "text": text[:50000]})
            )

        async def poison(i: int) -> None:
            await note(
                "settings", bad_content.put("/v1/tenant/settings", json={"exchange_rates": {"USD": "1e2000000"}})
            )

        streams: list[httpx.Response] = []
        stream_stack = contextlib.AsyncExitStack()

        async def invented_team(i: int) -> None:
            token = s.token(bad, f"s{i % 40}", "employee")
            r = await gam.post("/v1/leaderboard/stream-tickets", headers={"Authorization": f"Bearer {token}"})
            hostile[f"ticket {r.status_code}"] += 1
            if r.status_code != 201:
                return
            try:
                resp = await stream_stack.enter_async_context(
                    gam.stream("GET", "/v1/leaderboard/stream", params={"ticket": r.json()["ticket"], "team": f"x{i}"})
                )
            except httpx.HTTPError as e:
                hostile[f"stream {type(e).__name__}"] += 1
                return
            hostile[f"stream {resp.status_code}"] += 1
            if resp.status_code == 200:
                streams.append(resp)
            else:
                await resp.aread()

        async def big_xff(i: int) -> None:
            xff = ", ".join(visitor_ip(i * 1000 + j) for j in range(600))[:8192].rstrip(", ")
            await note("redirect-xff", sharing.get(f"/r/{bad_code}", headers={"X-Forwarded-For": xff}))

        async def big_body(i: int) -> None:
            token = s.token(bad, "b0", "employee")
            body = b'{"content_id": "' + b"x" * (2 * 2**20) + b'"}'
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            await note("big-body", sharing.post("/v1/shares", content=body, headers=headers))

        # -- the good tenant -------------------------------------------------------------------------
        # The good tenant's visitors: an open-loop generator in a process of its own (bench.redirect),
        # so the hostile generator's work in this process does not add to their measured latency.
        def good_visitors() -> dict[str, Any]:
            return offer(s.url("sharing"), good_codes, GOOD_CLICK_RATE, SECONDS, visitor0=10_000, procs=1, max_conns=64)

        # Its content flow (publish, share once sharing knows it, wait for the webhook): a process of its
        # own too (tests/support/contentflow.py says why).
        flows = math.ceil((RAMP + SECONDS) / GOOD_CONTENT_EVERY)
        flow_spec = {
            "content_url": s.url("content"),
            "sharing_url": s.url("sharing"),
            "admin_token": s.token(good, "boss", "admin"),
            "employee_tokens": [s.token(good, f"gg{i}", "employee", team="t") for i in range(flows)],
            "every": GOOD_CONTENT_EVERY,
            "seconds": RAMP + SECONDS,
            "webhooks": str(tmp_path / "good-webhooks.jsonl"),
        }

        loads = [
            at_rate(SHARE_RATE, stop, hostile_share),
            at_rate(CHECK_RATE, stop, hostile_check),
            at_rate(POISON_RATE, stop, poison),
            at_rate(STREAM_RATE, stop, invented_team),
            at_rate(XFF_RATE, stop, big_xff),
            at_rate(BIG_BODY_RATE, stop, big_body),
            peaks.run(stop),
        ]
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            flowing = asyncio.get_running_loop().run_in_executor(pool, contentflow.run, flow_spec)
            running = asyncio.gather(*loads)
            await asyncio.sleep(RAMP)  # the hostile load at full rate first: the good visitors meet it
            visits = await asyncio.to_thread(good_visitors)
            stop.set()
            await running
            flowed = await flowing
        content_delays, webhook_delays = flowed["content_to_sharing_s"], flowed["webhook_after_share_s"]
        await stream_stack.aclose()

    hops = await _webhook_hops(s.database_url("content"), good)
    content_hops = await _content_hops(s.database_url("content"), s.database_url("sharing"), good)
    latencies = [x for v in visits["latency"].values() for x in v]
    good_statuses = Counter({int(k): n for k, n in visits["statuses"].items()}) + Counter(visits["errors"])
    p99 = percentile(latencies, 99)
    samples = await scrape(s.url("sharing"))
    record(
        "10-noisy-neighbour",
        seconds=SECONDS,
        good_redirects=len(latencies),
        good_generator=summary(visits),
        good_p99_ms=round(p99 * 1000, 1),
        good_max_ms=round(max(latencies) * 1000, 1),
        # which of the good visits (in answer order) were slow: at the start (cold links) or later
        good_slow_ms={i: round(x * 1000) for i, x in enumerate(latencies) if x > 0.1},
        good_statuses=dict(good_statuses),
        content_to_sharing_s=[round(d, 2) for d in content_delays],
        content_hops_s=content_hops,
        webhook_after_share_s=[round(d, 2) for d in webhook_delays],
        webhook_hops_s=hops,
        hostile=dict(hostile),
        streams_open=len(streams),
        errors=errors,
        peak_rss_mb={svc: round(v / 2**20) for svc, v in peaks.peak.items()},
        trickle_requests=trickle.requests,
        huge_bytes_sent_mb=round(huge.sent / 2**20),
        sharing_loop_lag_max_ms=round(total(samples, "advocacy_event_loop_lag_max_seconds") * 1000, 1),
        sharing_redirect_le_250ms=total(samples, "advocacy_redirect_duration_seconds_bucket", le="0.25"),
        sharing_redirect_count=total(samples, "advocacy_redirect_duration_seconds_count"),
    )
    # the good tenant
    assert set(good_statuses) == {302}, good_statuses
    assert p99 < REDIRECT_P99, f"good redirect p99 {p99 * 1000:.0f} ms"
    if REDIRECT_MAX is not None:
        assert max(latencies) < REDIRECT_MAX
    assert content_delays and max(content_delays) < CONTENT_WITHIN, content_delays
    assert webhook_delays and max(webhook_delays) < WEBHOOK_WITHIN, webhook_delays
    # the services
    for svc, n in starts.items():
        assert s.process(svc).starts == n and s.process(svc).is_running(), f"{svc} restarted"
    assert all(v < RSS_LIMIT for v in peaks.peak.values()), peaks.peak
    # the hostile tenants: answered, never with a 5xx, and each path did meet its guard. A 2 MiB body
    # is refused on its Content-Length before it is read, and the connection closed: a client still
    # writing it may see the reset before it reads the 413 (uvicorn does not linger on close).
    unanswered = [k for k in hostile if not k.split()[1].isdigit() and k != "big-body ReadError"]
    assert not unanswered, (hostile, errors)
    assert not [k for k in hostile if k.split()[1].isdigit() and int(k.split()[1]) >= 500], hostile
    assert hostile["settings 422"] > 0 and hostile["big-body 413"] > 0, hostile
    assert hostile["stream 429"] > 0 and hostile["redirect-xff 302"] > 0, hostile
    assert trickle.requests > 0 and huge.requests > 0  # the hostile endpoints were called
    assert huge.sent < 64 * 2**20  # the 1 GiB answer was not read
