"""Scenario 9: five times the sustainable load on ``/r/{code}``.

Promise (issue 9): the excess is answered 429 or 503 quickly, the accepted requests keep p99 under
250 ms, no process is killed for memory, and nothing accepted is lost (a 302 means the click was
journaled: each one is judged exactly once downstream).

Sharing as in production: an ``api`` process (the redirect, its journal and the sender to Kafka) and
a ``worker`` process (the verdict consumer and the outbox relay), on a broker of their own.

"Sustainable" is measured, not assumed: the highest rate at which the whole click path keeps up on
this machine -- the redirect's p99 under ``SUSTAINABLE_P99_MS`` with nothing shed, *and* the verdict
worker judging every click of the step within ``CATCH_UP_S`` of its end (a rate the redirect can
answer but the click path cannot judge is a backlog growing without bound, not a sustainable load).
Open-loop steps doubling from ``FIRST_STEP``, capped at ``MAX_SUSTAINABLE`` (five times that is about
what the Python generator can offer on two shared cores). Then five times the sustainable rate for
``SECONDS``.

The load generator is open loop: request ``i`` is due at ``t0 + i / rate`` whatever happened to the
ones before (wrk is closed loop: it slows down with the server and never overloads it), sent on a
pool of keep-alive connections growing up to a cap, in separate processes
(``bench.redirect.offer``), each request from a new visitor (X-Forwarded-For from
loopback, which dev trusts, and a browser UA). Latency runs from the moment the generator dispatched
the request, so waiting for a free connection (the server being slow) counts; the generator's own
lateness (it shares the two cores) is recorded apart.

Pass: the sharing api process never restarted and its peak RSS stayed under ``RSS_LIMIT_MB``;
sharing's clicks table ends with one counted click per 302 of the whole run and nothing else (a 503
journals nothing; a request the generator saw no answer for may or may not have been journaled, so
it widens the bound); no status but 302, 429 and 503; and then the latency promise: every request
answered, the rejections' p99 under ``REJECTED_P99_MS``, the 302s' p99 under 250 ms. The latency
promise is not kept on this machine (see docs/reliability.md): a miss is reported as an expected
failure (xfail) with the figures, the rest fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from advocacy_common.auth.devkeys import DevKeys
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.processes import ServiceProcess
from bench.redirect import offer, summary
from tests.support.stackkit import PrivateStack, record, sized
from tests.support.traffic import make_shares, scrape, total

SECONDS = sized(6.0, 30.0)  # the overload itself
STEP_SECONDS = sized(1.5, 5.0)  # each step of the search for the sustainable rate
FIRST_STEP = 200.0  # requests/s; doubled while the click path keeps up
MAX_SUSTAINABLE = 800.0
SUSTAINABLE_P99_MS = 50.0
CATCH_UP_S = 2.0
ACCEPTED_P99_MS = 250.0
REJECTED_P99_MS = 100.0
RSS_LIMIT_MB = 512
MAX_CONNECTIONS = 1024  # the generator's, over its processes
EMPLOYEES = 50


@pytest.fixture
def overload_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[Any]:
    """Sharing as in production: an ``api`` process (the redirect) and a ``worker`` process (the
    verdict consumer, the outbox relay), on a broker of their own."""
    s = PrivateStack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "s9",
        services=("sharing",),
        role="api",
    )
    worker = ServiceProcess(
        "sharing",
        free_port(),
        {**s.inner.envs["sharing"], "SHARING_ROLE": "worker"},
        tmp_path / "s9-sharing-worker.log",
    )
    worker.env["SHARING_PORT"] = str(worker.port)
    try:
        s.prepare_and_start()
        worker.start()
        worker.wait_ready(60)
        yield s, worker
    finally:
        worker.terminate()
        s.stop()


class _RssWatch:
    """Peak RSS of a process, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> _RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _clicks_in_database(url: str, tenant: str) -> dict[str, int]:
    eng = create_async_engine(url)
    try:
        async with eng.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text("SELECT verdict, count(*) FROM clicks WHERE tenant_id = :t GROUP BY verdict"),
                    {"t": tenant},
                )
            ).all()
    finally:
        await eng.dispose()
    return {str(v): int(n) for v, n in rows}


async def test_five_times_the_sustainable_rate_sheds_fast_and_loses_nothing(overload_stack: Any) -> None:
    s, worker = overload_stack
    tenant = f"s9-{uuid.uuid4().hex[:8]}"
    truth = await make_shares(s, tenant, [f"e{i:03d}" for i in range(EMPLOYEES)])
    codes = list(truth.codes)
    url = s.url("sharing")
    proc = s.process("sharing")
    starts, pid = proc.starts, proc.pid
    assert pid is not None
    accepted_302 = 0
    visitor0 = 0

    def run(rate: float, seconds: float) -> dict[str, Any]:
        nonlocal accepted_302, visitor0
        res = offer(url, codes, rate, seconds, visitor0=visitor0, max_conns=MAX_CONNECTIONS)
        visitor0 += int(rate * seconds) + 1
        accepted_302 += res["statuses"].get(302, 0)
        return res

    await asyncio.to_thread(run, 200.0, 1.0)  # warm-up: the link cache, connections
    db_url = s.database_url("sharing")

    async def judged() -> int:
        return sum((await _clicks_in_database(db_url, tenant)).values())

    async def caught_up(within: float) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < within:
            if await judged() >= accepted_302:
                return time.monotonic() - start
            await asyncio.sleep(0.1)
        return None

    assert await caught_up(30.0) is not None
    # (1) the sustainable rate: double while the click path keeps up
    steps: list[dict[str, Any]] = []
    rate, sustainable = FIRST_STEP, 0.0
    while rate <= MAX_SUSTAINABLE:
        res = await asyncio.to_thread(run, rate, STEP_SECONDS)
        figures = summary(res)
        lag = await caught_up(CATCH_UP_S)
        figures["judged_within_s"] = None if lag is None else round(lag, 2)
        steps.append(figures)
        kept_up = (
            figures["p99_302_ms"] < SUSTAINABLE_P99_MS
            and set(res["statuses"]) == {302}
            and not sum(res["errors"].values())
            and lag is not None
        )
        if not kept_up:
            break
        sustainable = rate
        rate *= 2
    assert sustainable > 0, ("the click path did not keep up even at the first step", steps)
    assert await caught_up(30.0) is not None

    # (2) five times that
    with _RssWatch(pid) as rss:
        res = await asyncio.to_thread(run, 5 * sustainable, SECONDS)
    over = summary(res)
    samples = await scrape(url)
    # every answer is timed by the redirect's own histogram (the latency alert reads it)
    assert total(samples, "advocacy_redirect_duration_seconds_count") >= accepted_302 > 0
    unknown = sum(res["errors"].values())  # no answer seen (time-out, closed): journaled or not
    # every 302 judged once, counted, and nothing judged that was not a 302 (or had no answer)
    start = time.monotonic()
    verdicts: dict[str, int] = {}
    while time.monotonic() - start < sized(90, 300):
        verdicts = await _clicks_in_database(db_url, tenant)
        if sum(verdicts.values()) >= accepted_302 and set(verdicts) <= {"counted"}:
            break
        await asyncio.sleep(0.5)
    judged_after = time.monotonic() - start
    record(
        "9-overload",
        sustainable_per_s=sustainable,
        steps=steps,
        overload=over,
        shed_overload=total(samples, "advocacy_redirects_shed_total", reason="overload"),
        shed_link_loads=total(samples, "advocacy_redirects_shed_total", reason="link_loads"),
        loop_lag_max_ms=round(total(samples, "advocacy_event_loop_lag_max_seconds") * 1000, 1),
        peak_rss_mb=round(rss.peak / 2**20),
        clicks_302_total=accepted_302,
        unanswered=unknown,
        judged=verdicts,
        judged_after_s=round(judged_after, 1),
    )
    assert proc.is_running() and proc.starts == starts and proc.pid == pid, "sharing restarted"
    assert worker.is_running()
    assert rss.peak < RSS_LIMIT_MB * 2**20, rss.peak
    assert accepted_302 <= verdicts.get("counted", 0) <= accepted_302 + unknown, (verdicts, accepted_302, unknown)
    assert set(verdicts) <= {"counted"}, verdicts
    assert set(res["statuses"]) <= {302, 429, 503}, over
    # The latency promise. KNOWN GAP (docs/reliability.md, scenario 9): on two shared cores it is not
    # kept at 5x -- a 503 still costs uvicorn's parsing and writes (~60 % of a 302), and new
    # connections wait in the listen queue while the loop serves established ones -- so a miss is
    # an expected failure, with the figures recorded above; loss, a restart or memory fail for real.
    late = []
    if unknown:
        late.append(f"{unknown} requests without an answer")
    if over["p99_rejected_ms"] >= REJECTED_P99_MS:
        late.append(f"rejections p99 {over['p99_rejected_ms']} ms >= {REJECTED_P99_MS}")
    if over["p99_302_ms"] >= ACCEPTED_P99_MS:
        late.append(f"302 p99 {over['p99_302_ms']} ms >= {ACCEPTED_P99_MS}")
    if late:
        pytest.xfail("5x sustainable: " + "; ".join(late))
