"""Scenario 6: the PostgreSQL of one service stopped (30 s full, 8 s short).

Metrics gets a PostgreSQL server of its own (``EmbeddedPostgres``) so the test can stop it alone;
sharing and gamification stay on the session server, all on a broker of their own. Clicks flow
before and during the outage (ground truth: 302s per employee). Checker: metrics' ``/readyz``
answers 503 within 10 s of the stop; the ``metrics`` group's committed offsets do not advance while
its database is down (the consumer retries the batch in hand and commits nothing); after the server
returns, metrics' counted clicks (and, for the service that never lost its database, gamification's
points) are exact.
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
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from tests.reliability.probes import GroupProbe
from tests.reliability.s1_groups import GROUP_TOPICS
from tests.support.stackkit import PrivateStack, record, running_stack, sized
from tests.support.traffic import drive_clicks, leaderboard_points, make_shares, metrics_clicks, wait_exact

OUTAGE = sized(8.0, 30.0)
EMPLOYEES = sized(30, 100)
RATE = sized(60.0, 100.0)


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(
        tmp_path / "metrics-pg", free_port(), log_path=tmp_path / "metrics-pg.log", settings=FAST_UNSAFE_SETTINGS
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def db_stack(
    pg: Any, own_pg: EmbeddedPostgres, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path
) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "s6",
        services=("sharing", "metrics", "gamification"),
        server_urls={"metrics": own_pg.server_url},
    ) as s:
        yield s


async def test_one_database_down_readiness_fails_offsets_hold_totals_exact(
    db_stack: PrivateStack, own_pg: EmbeddedPostgres
) -> None:
    s = db_stack
    tenant = f"s6-{uuid.uuid4().hex[:8]}"
    rng = random.Random(6)
    employees = [f"e{i:04d}" for i in range(EMPLOYEES)]
    truth = await make_shares(s, tenant, employees)
    codes = list(truth.codes)
    await drive_clicks(s.url("sharing"), truth, [rng.choice(codes) for _ in range(200)], concurrency=8)
    async with GroupProbe(s.bootstrap, "metrics", GROUP_TOPICS["metrics"]) as probe:
        await probe.wait_lag_zero(30)
        await asyncio.to_thread(own_pg.stop)
        stopped_at = time.monotonic()
        committed_at_stop = await probe.committed()

        async def not_ready() -> float:
            async with httpx.AsyncClient(timeout=2) as c:
                while time.monotonic() - stopped_at < 10:
                    try:
                        if (await c.get(s.url("metrics") + "/readyz")).status_code == 503:
                            return time.monotonic() - stopped_at
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)
            raise AssertionError("metrics still ready 10 s after its database stopped")

        n = int(RATE * OUTAGE)
        plan = [rng.choice(codes) for _ in range(n)]
        readiness_s, _ = await asyncio.gather(
            not_ready(),
            drive_clicks(s.url("sharing"), truth, plan, concurrency=8, rate=RATE, first_visitor=100_000),
        )
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
        committed_before_restart = await probe.committed()
        ends = await probe.ends()
        await asyncio.to_thread(own_pg.start)
        back_at = time.monotonic()
    assert truth.statuses == {302: 200 + n}, truth.statuses
    assert committed_before_restart == committed_at_stop, "offsets advanced while the database was down"
    assert sum(ends.values()) > sum(committed_at_stop.values()), "no traffic reached metrics' topics"
    want_clicks = {e: truth.clicks.get(e, 0) for e in employees}
    want_points = {e: 10 * truth.shares[e] + truth.clicks.get(e, 0) for e in employees}
    t_metrics = await wait_exact(lambda: metrics_clicks(s, tenant, employees), want_clicks, timeout=60, what="metrics")
    assert await leaderboard_points(s, tenant) == want_points
    await asyncio.to_thread(s.process("metrics").wait_ready, 30)
    record(
        "6-database-outage",
        outage_s=OUTAGE,
        clicks_during_outage=n,
        readiness_failed_after_s=round(readiness_s, 2),
        records_waiting_at_restart=sum(ends.values()) - sum(committed_before_restart.values()),
        exact_after_return_s=round(t_metrics, 2),
        ready_again_s=round(time.monotonic() - back_at, 2),
        metrics_restarted=s.process("metrics").starts - 1,
    )
