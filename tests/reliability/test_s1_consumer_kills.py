"""Scenario 1: a consumer SIGKILLed at random moments while clicks flow.

Ground truth: the load generator's own count of 302 answers per employee (each click from a new
visitor, so every answered click is a counted click) and one share per employee. Checker: metrics'
counted clicks per employee and gamification's points per employee (10 per share + 1 per counted
click, the default rules) must equal it exactly, and both consumer groups' lag (log end minus
committed offset, read from the broker) must be back to zero within 60 s of the last restart.

Kills alternate between the metrics and the gamification process (role ``all``: consumer, relay and
API in one). Each service's first kill is a SIGKILL at a jittered moment; after that every other
kill is aimed at the window between the database commit and the offset commit: the incarnation is
started with the fail point ``consumer.after_db_commit=nth:1`` (advocacy_common.failpoints), so it
SIGKILLs itself right after its first batch (the backlog since the kill) committed in the database
and before the offsets are committed. That it landed there is measured, not assumed: after the death, (inbox rows - committed
offsets) above its value at rest means effects were committed whose offsets were not, and the
service's log holds the fail point's last words. Metrics claims no clicks in its inbox (ADR 0021) and
skips the types it ignores: its gap is (click facts + invalidations - offsets on the clicks topic).
Gamification claims no clicks either (ADR 0022): its rows are its inbox's plus its click awards. Each incarnation's
``advocacy_events_consumed_total{outcome="duplicate"}`` (scraped before the next kill) counts the
redelivered events its inbox skipped.

Full: 10,000 clicks from 1,000 employees, 20 kills. Short: 1,000 clicks from 150 employees, 4 kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid

from advocacy_common import topics
from advocacy_common.failpoints import ENV
from tests.reliability.probes import GroupProbe, InboxWatch
from tests.support.stackkit import PrivateStack, record, sized
from tests.support.traffic import (
    drive_clicks,
    leaderboard_points,
    make_shares,
    metrics_clicks,
    percentile,
    scrape,
    total,
    wait_exact,
)

CLICKS = sized(1_000, 10_000)
EMPLOYEES = sized(150, 1_000)
KILLS = sized(4, 20)
RATE = sized(200.0, 250.0)
GROUP_TOPICS = {
    "metrics": (topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT, topics.GAMIFICATION),
    "gamification": (topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT),
}
# Per group: the topics each of whose records leaves one row that ``RECORDED_SQL`` counts.
RECORDED_TOPICS = {"metrics": (topics.CLICKS,), "gamification": GROUP_TOPICS["gamification"]}
RECORDED_SQL = {
    "metrics": "SELECT (SELECT count(*) FROM click_facts) + (SELECT count(*) FROM click_invalidations)",
    # gamification's clicks leave an award, not an inbox row (ADR 0022); every click here is counted
    "gamification": "SELECT (SELECT count(*) FROM inbox WHERE source LIKE 'gamification %') "
    "+ (SELECT count(*) FROM ledger WHERE entry_type = 'award' AND action = 'click')",
}


async def test_consumers_sigkilled_mid_traffic_totals_exact_and_lag_recovers(rel_stack: PrivateStack) -> None:
    s = rel_stack
    tenant = f"s1-{uuid.uuid4().hex[:8]}"
    rng = random.Random(1)
    employees = [f"e{i:05d}" for i in range(EMPLOYEES)]
    truth = await make_shares(s, tenant, employees)
    codes = list(truth.codes)
    plan = [codes[i % len(codes)] for i in range(CLICKS)]
    rng.shuffle(plan)

    async with (
        GroupProbe(s.bootstrap, "metrics", GROUP_TOPICS["metrics"]) as pm,
        GroupProbe(s.bootstrap, "gamification", GROUP_TOPICS["gamification"]) as pgam,
        InboxWatch(s.database_url("metrics"), "metrics", RECORDED_SQL["metrics"]) as wm,
        InboxWatch(s.database_url("gamification"), "gamification", RECORDED_SQL["gamification"]) as wg,
    ):
        probes = {"metrics": pm, "gamification": pgam}
        watches = {"metrics": wm, "gamification": wg}

        async def gap(svc: str) -> int:
            """Rows recorded less offsets committed, on the topics whose records each leave a row."""
            committed = await probes[svc].committed()
            return await watches[svc].count() - sum(
                n for tp, n in committed.items() if tp.topic in RECORDED_TOPICS[svc]
            )

        for p in probes.values():
            await p.wait_lag_zero(60)
        rest = {svc: await gap(svc) for svc in probes}
        kills: list[dict[str, object]] = []
        skipped = 0
        duration = CLICKS / RATE
        # kill moments spread over the traffic, each jittered within its slot
        slots = [(k + rng.uniform(0.2, 0.8)) * 0.9 * duration / KILLS for k in range(KILLS)]

        def aimed(k: int) -> bool:
            return k >= 2 and k % 4 in (2, 3)

        def restart(svc: str, k: int) -> None:
            """Start ``svc`` again; armed with the fail point when its next kill (k + 2) is aimed."""
            proc = s.process(svc)
            if k + 2 < KILLS and aimed(k + 2):
                proc.env[ENV] = "consumer.after_db_commit=nth:1"  # its first batch: the backlog since the kill
            else:
                proc.env.pop(ENV, None)
            proc.start()

        async def chaos() -> None:
            nonlocal skipped
            t0 = time.monotonic()
            for k, at in enumerate(slots):
                await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
                svc = ("metrics", "gamification")[k % 2]
                proc = s.process(svc)
                with contextlib.suppress(Exception):  # a process still starting (or dead) has no /metrics
                    skipped += int(
                        total(await scrape(s.url(svc)), "advocacy_events_consumed_total", outcome="duplicate")
                    )
                self_killed = False
                if aimed(k):  # the armed incarnation dies at its fail point (soon after it started)
                    deadline = time.monotonic() + 30
                    while proc.is_running() and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                    self_killed = not proc.is_running()
                if proc.is_running():
                    await asyncio.to_thread(proc.kill)
                kills.append(
                    {
                        "svc": svc,
                        "aimed": aimed(k),
                        "fail_point": self_killed,
                        "between_db_and_offset_commit": await gap(svc) > rest[svc],
                    }
                )
                restart(svc, k)

        await asyncio.gather(chaos(), drive_clicks(s.url("sharing"), truth, plan, concurrency=16, rate=RATE))
        await asyncio.to_thread(s.ensure_running)
        restarted_at = time.monotonic()
        assert truth.statuses == {302: CLICKS}, truth.statuses
        lag_seconds = {svc: round(await p.wait_lag_zero(60), 2) for svc, p in probes.items()}

    want_clicks = {e: truth.clicks.get(e, 0) for e in employees}
    want_points = {e: 10 * truth.shares[e] + truth.clicks.get(e, 0) for e in employees}
    t_metrics = await wait_exact(lambda: metrics_clicks(s, tenant, employees), want_clicks, timeout=60, what="metrics")
    t_points = await wait_exact(lambda: leaderboard_points(s, tenant), want_points, timeout=60, what="points")
    await asyncio.sleep(2)  # and nothing arrives twice later
    assert await metrics_clicks(s, tenant, employees) == want_clicks
    assert await leaderboard_points(s, tenant) == want_points
    landed = sum(1 for k in kills if k["between_db_and_offset_commit"])
    for svc in ("metrics", "gamification"):
        skipped += int(total(await scrape(s.url(svc)), "advocacy_events_consumed_total", outcome="duplicate"))
    record(
        "1-consumer-sigkill",
        clicks=CLICKS,
        employees=EMPLOYEES,
        kills=len(kills),
        kills_between_db_and_offset_commit=landed,
        kills_by_fail_point=sum(1 for k in kills if k["fail_point"]),
        redelivered_events_skipped_by_inbox=skipped,
        lag_zero_seconds_after_restart=lag_seconds,
        exact_metrics_seconds=round(t_metrics, 2),
        exact_points_seconds=round(t_points, 2),
        since_restart_seconds=round(time.monotonic() - restarted_at, 2),
        redirect_p99_ms=round(percentile(truth.latencies, 99) * 1000, 1),
    )
    assert len(kills) == KILLS, kills
    # every aimed kill died at its fail point, with effects committed and offsets not
    assert all(k["fail_point"] and k["between_db_and_offset_commit"] for k in kills if k["aimed"]), kills
    assert landed >= sum(1 for k in kills if k["aimed"]) >= 1, kills
    logs = "".join((s.inner.data.logs / f"{svc}.log").read_text(errors="replace") for svc in GROUP_TOPICS)
    assert logs.count("failpoint consumer.after_db_commit: SIGKILL") == sum(1 for k in kills if k["fail_point"])
    assert all(v < 60 for v in lag_seconds.values()), lag_seconds
