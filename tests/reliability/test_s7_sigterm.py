"""Scenario 7: SIGTERM to every service under 200 requests per second.

A private four-service stack on a broker of its own. The load generator sends ~200 requests/s: 70 %
clicks on ``/r/`` and 30 % authenticated reads spread over content, metrics and gamification, each
on a new connection (so "in flight" is unambiguous: the connection was accepted). During the run
each service in turn gets SIGTERM and is started again as soon as it has exited.

Ground truth: the 302s per employee. Checker: no 5xx; metrics' counted clicks per employee exact
after the restarts (no answered click lost, none doubled); a refused connection while a process is
down was never in flight and is only counted. A connection that was accepted and then closed
without an answer is a failed in-flight request: there must be none. (Plain uvicorn closed 13-18
per run that had been accepted just before SIGTERM; ``GracefulServer`` in
advocacy_common.entrypoint now gives them their answer.) The
Python load generator reaches ~75-100 requests/s on this 2-core machine with the four services,
not 200: the rate is recorded as achieved.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_dev.devstack.broker import TansuBroker
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS
from tests.support.stackkit import PrivateStack, record, running_stack, sized
from tests.support.traffic import make_shares, metrics_clicks, percentile, visitor_ip, wait_exact

SERVICES = ("content", "sharing", "metrics", "gamification")
RATE = 200.0
SECONDS = sized(12.0, 40.0)
ROUNDS = sized(1, 3)  # each service gets SIGTERM this many times
EMPLOYEES = 40
WORKERS = 24


@pytest.fixture
def term_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url, bootstrap=fresh_broker.bootstrap, keys=dev_keys, data_dir=tmp_path / "s7"
    ) as s:
        yield s


async def test_sigterm_every_service_under_load_no_failed_request_no_lost_click(term_stack: PrivateStack) -> None:
    s = term_stack
    tenant = f"s7-{uuid.uuid4().hex[:8]}"
    rng = random.Random(7)
    employees = [f"e{i:03d}" for i in range(EMPLOYEES)]
    truth = await make_shares(s, tenant, employees)
    codes = list(truth.codes)
    admin = s.token(tenant, "admin", "admin")
    reads = [("content", "/v1/content"), ("metrics", "/v1/metrics/summary"), ("gamification", "/v1/leaderboard")]
    outcome: dict[str, dict[str, int]] = {svc: {} for svc in SERVICES}
    failed: list[tuple[str, str]] = []
    dropped: list[tuple[str, str, float]] = []  # accepted, then closed without an answer
    sigterm_at: list[tuple[str, float]] = []
    latencies: list[float] = []
    n = int(RATE * SECONDS)
    start = time.monotonic()
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=0)  # a new connection per request

    def count(svc: str, what: str) -> None:
        outcome[svc][what] = outcome[svc].get(what, 0) + 1

    async with httpx.AsyncClient(timeout=httpx.Timeout(30, pool=None), limits=limits) as c:
        next_i = iter(range(n))

        async def sender() -> None:
            for i in next_i:
                await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
                await one(i)

        async def one(i: int) -> None:
            if rng.random() < 0.7:
                svc, code = "sharing", rng.choice(codes)
                req = c.build_request(
                    "GET",
                    f"{s.url('sharing')}/r/{code}",
                    headers={
                        "X-Forwarded-For": visitor_ip(i),
                        "User-Agent": BROWSER_UAS[i % len(BROWSER_UAS)],
                        "Accept-Language": ACCEPT_LANGUAGE,
                    },
                )
            else:
                svc, path = rng.choice(reads)
                code = ""
                req = c.build_request("GET", s.url(svc) + path, headers={"Authorization": f"Bearer {admin}"})
            t0 = time.perf_counter()
            try:
                r = await c.send(req)
            except httpx.ConnectError:
                count(svc, "refused")  # the process was down: never in flight
                return
            except httpx.HTTPError as e:
                count(svc, type(e).__name__)
                dropped.append((svc, type(e).__name__, time.monotonic()))
                return
            latencies.append(time.perf_counter() - t0)
            count(svc, str(r.status_code))
            if r.status_code >= 500:
                failed.append((svc, str(r.status_code)))
            elif code and r.status_code == 302:
                truth.answered(302, truth.codes[code], 0.0)

        async def terminator() -> None:
            order = [svc for _ in range(ROUNDS) for svc in SERVICES]
            gap = SECONDS / (len(order) + 1)
            for k, svc in enumerate(order):
                await asyncio.sleep(max(0.0, start + (k + 1) * gap - time.monotonic()))
                proc = s.process(svc)
                sigterm_at.append((svc, time.monotonic()))
                await asyncio.to_thread(proc.terminate)  # SIGTERM, waits for the exit
                proc.start()

        await asyncio.gather(terminator(), *(sender() for _ in range(WORKERS)))
    await asyncio.to_thread(s.ensure_running)
    want = {e: truth.clicks.get(e, 0) for e in employees}
    t_exact = await wait_exact(lambda: metrics_clicks(s, tenant, employees), want, timeout=60, what="metrics")
    at_shutdown = [d for d in dropped if any(svc == d[0] and 0 <= d[2] - t <= 2.0 for svc, t in sigterm_at)]
    record(
        "7-sigterm",
        requests=n,
        achieved_rate=round(sum(sum(v.values()) for v in outcome.values()) / (time.monotonic() - start), 1),
        rate=RATE,
        sigterms=ROUNDS * len(SERVICES),
        outcome=outcome,
        failed_5xx=len(failed),
        dropped_without_answer=len(dropped),
        dropped_within_2s_of_its_sigterm=len(at_shutdown),
        clicks_answered=truth.total_clicks,
        exact_after_s=round(t_exact, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 1),
    )
    assert not failed, (failed[:20], outcome)
    # accepted, then closed without an answer: a failed in-flight request
    assert not dropped, ("accepted and dropped", dropped, sigterm_at)
