"""Scenario 2: every event delivered twice, and 10 % three times.

Ground truth: the load generator's shares and 302-answered clicks for one tenant, flowing normally
through sharing. Then every record of that tenant on the topics metrics and gamification consume
(content, shares, clicks, gamification) is read back from the broker and produced again, byte for
byte (key, headers, value), and every tenth record a third time. Checker: metrics' counted clicks and
gamification's points per employee are still exactly the truth, and each group's
``advocacy_events_consumed_total{outcome="duplicate"}`` grew by exactly the number of copies
injected on the topics it consumes that its inbox claims (the processes are not restarted during
the test, so the counters are comparable): metrics neither claims the types it ignores
(``ConsumerSpec.types``) nor its clicks, whose copies its click facts' key absorbs
(``keyed_types``, docs/adr/0021-fact-keyed-events-skip-the-inbox.md).

Full: 400 employees, 5,000 clicks. Short: 60 employees, 600 clicks.
"""

from __future__ import annotations

import asyncio
import random
import uuid

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_common.kafka import make_producer
from advocacy_gamification.consumers import CONSUMERS as GAMIFICATION
from advocacy_metrics.consumers import CONSUMERS as METRICS
from tests.reliability.probes import GroupProbe, read_topic
from tests.reliability.s1_groups import GROUP_TOPICS
from tests.support.stackkit import PrivateStack, record, sized
from tests.support.traffic import (
    drive_clicks,
    leaderboard_points,
    make_shares,
    metrics_clicks,
    scrape,
    total,
    wait_exact,
)

EMPLOYEES = sized(60, 400)
CLICKS = sized(600, 5_000)
INJECTED_TOPICS = (topics.CONTENT, topics.SHARES, topics.CLICKS, topics.GAMIFICATION)


SPECS = {"metrics": METRICS[0], "gamification": GAMIFICATION[0]}


def _claimed(spec: ConsumerSpec, event_type: str) -> bool:
    """Whether the group's inbox claims events of ``event_type`` (so counts a copy as a duplicate)."""
    return (not spec.types or event_type in spec.types) and event_type not in spec.keyed_types


async def _duplicates(s: PrivateStack, svc: str) -> int:
    return int(total(await scrape(s.url(svc)), "advocacy_events_consumed_total", group=svc, outcome="duplicate"))


async def test_every_event_twice_and_some_thrice_changes_nothing(rel_stack: PrivateStack) -> None:
    s = rel_stack
    tenant = f"s2-{uuid.uuid4().hex[:8]}"
    rng = random.Random(2)
    employees = [f"e{i:04d}" for i in range(EMPLOYEES)]
    truth = await make_shares(s, tenant, employees)
    codes = list(truth.codes)
    await drive_clicks(s.url("sharing"), truth, [rng.choice(codes) for _ in range(CLICKS)], concurrency=16)
    assert truth.statuses == {302: CLICKS}, truth.statuses
    want_clicks = {e: truth.clicks.get(e, 0) for e in employees}
    want_points = {e: 10 * truth.shares[e] + truth.clicks.get(e, 0) for e in employees}
    await wait_exact(lambda: metrics_clicks(s, tenant, employees), want_clicks, timeout=60, what="metrics before")
    await wait_exact(lambda: leaderboard_points(s, tenant), want_points, timeout=60, what="points before")
    for svc in ("metrics", "gamification"):
        async with GroupProbe(s.bootstrap, svc, GROUP_TOPICS[svc]) as p:
            await p.wait_lag_zero(60)
    pids = {svc: s.process(svc).pid for svc in ("metrics", "gamification")}
    before = {svc: await _duplicates(s, svc) for svc in pids}

    injected = dict.fromkeys(INJECTED_TOPICS, 0)
    claimed = dict.fromkeys(SPECS, 0)  # copies each group's inbox claims
    producer = make_producer(s.bootstrap)
    await producer.start()
    try:
        for topic in INJECTED_TOPICS:
            originals = await read_topic(s.bootstrap, topic, tenant=tenant)
            assert originals or topic == topics.CONTENT, topic
            for i, r in enumerate(originals):
                event_type = dict(r.headers)["ce_type"].decode()
                for _ in range(2 if i % 10 == 0 else 1):
                    await producer.send(topic, r.value, key=r.key, headers=list(r.headers))
                    injected[topic] += 1
                    for svc, spec in SPECS.items():
                        claimed[svc] += topic in GROUP_TOPICS[svc] and _claimed(spec, event_type)
        await asyncio.wait_for(producer.flush(), 30)
    finally:
        await producer.stop()

    want_dupes = claimed
    for svc in pids:
        async with GroupProbe(s.bootstrap, svc, GROUP_TOPICS[svc]) as p:
            await p.wait_lag_zero(60)
    got_dupes = {svc: await _duplicates(s, svc) - before[svc] for svc in pids}
    assert {svc: s.process(svc).pid for svc in pids} == pids, "a consumer restarted during the test"
    assert await metrics_clicks(s, tenant, employees) == want_clicks
    assert await leaderboard_points(s, tenant) == want_points
    record(
        "2-duplicates",
        employees=EMPLOYEES,
        clicks=CLICKS,
        copies_injected_by_topic=injected,
        duplicates_skipped=got_dupes,
        duplicates_expected=want_dupes,
    )
    assert got_dupes == want_dupes
