"""Scenario 5: two malformed records in every 1,000.

While clicks flow through sharing (the good events, with ground truth), the test produces malformed
records into ``advocacy.clicks`` at 2 per 1,000 good ones, of three kinds: a body that is not JSON,
a record without ``ce_id``, and JSON that breaks the ``share.clicked`` model. Every malformed
record carries a unique key. Checker: in both groups' dead-letter topics (``advocacy.dlq.metrics``,
``advocacy.dlq.gamification``) every malformed record appears once, within 5 s of being produced
(DLQ record timestamp minus produce time), with ``dlq_original_topic``/``partition``/``offset``
equal to where it was written and a ``dlq_error``; no good event is lost (metrics and points
exact); and no consumer process restarted (same pids, no new starts).

Full: 10,000 clicks (20 malformed). Short: 1,000 clicks (3 malformed).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

from advocacy_common import topics
from advocacy_common.kafka import make_producer
from tests.reliability.probes import header, read_topic
from tests.support.helpers import eventually
from tests.support.stackkit import PrivateStack, record, sized
from tests.support.traffic import drive_clicks, leaderboard_points, make_shares, metrics_clicks, wait_exact

CLICKS = sized(1_000, 10_000)
EMPLOYEES = sized(50, 200)
BAD = max(3, CLICKS * 2 // 1000)


def _malformed(i: int, tenant: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    base = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/advocacy/sharing"),
        ("ce_type", b"io.advocacy.share.clicked.v1"),
        ("ce_tenantid", tenant.encode()),
        ("content-type", b"application/json"),
    ]
    kind = i % 3
    if kind == 0:
        return b"{not json", base
    if kind == 1:
        return b'{"click_id": "x"}', [h for h in base if h[0] != "ce_id"]
    return b'{"click_id": 42, "employee_id": null, "verdict": "nonsense"}', base


async def test_malformed_records_are_dead_lettered_fast_and_nothing_good_is_lost(rel_stack: PrivateStack) -> None:
    s = rel_stack
    tenant = f"s5-{uuid.uuid4().hex[:8]}"
    rng = random.Random(5)
    employees = [f"e{i:04d}" for i in range(EMPLOYEES)]
    truth = await make_shares(s, tenant, employees)
    codes = list(truth.codes)
    starts = {svc: (s.process(svc).pid, s.process(svc).starts) for svc in ("metrics", "gamification")}
    sent: dict[str, dict[str, Any]] = {}  # key -> where and when it was written
    producer = make_producer(s.bootstrap)
    await producer.start()

    async def poison(done: int) -> None:
        want = done * 2 // 1000 + (1 if done >= CLICKS // 2 else 0)  # 2 per 1,000, and one mid-way
        while len(sent) < min(want, BAD):
            i = len(sent)
            key = f"malformed-{tenant}-{i}"
            value, headers = _malformed(i, tenant)
            sent[key] = {"at": time.time()}
            meta = await asyncio.wait_for(
                producer.send_and_wait(topics.CLICKS, value, key=key.encode(), headers=headers), 10
            )
            sent[key].update(partition=meta.partition, offset=meta.offset)

    try:
        await drive_clicks(
            s.url("sharing"), truth, [rng.choice(codes) for _ in range(CLICKS)], concurrency=16, on_progress=poison
        )
        while len(sent) < BAD:
            await poison(CLICKS)
    finally:
        await producer.stop()
    assert truth.statuses == {302: CLICKS}, truth.statuses
    latencies: list[float] = []
    for group in ("metrics", "gamification"):

        async def dead(group: str = group) -> list[Any]:
            records = await read_topic(s.bootstrap, topics.dead_letter(group), idle=0.5)
            found = [r for r in records if r.key and r.key.decode() in sent]
            return found if len(found) >= BAD else []

        dlq = await eventually(dead, timeout=10, interval=0.2, what=f"{BAD} dead letters of {group}")
        by_key = {r.key.decode(): r for r in dlq if r.key}
        assert len(dlq) == len(by_key) == BAD, (group, len(dlq), sorted(by_key))
        for key, r in by_key.items():
            where = sent[key]
            assert header(r, "dlq_original_topic") == topics.CLICKS, (group, key)
            assert header(r, "dlq_original_partition") == str(where["partition"]), (group, key)
            assert header(r, "dlq_original_offset") == str(where["offset"]), (group, key)
            assert header(r, "dlq_error"), (group, key)
            latency = r.timestamp / 1000 - where["at"]
            latencies.append(latency)
            assert latency <= 5.0, (group, key, latency)

    want_clicks = {e: truth.clicks.get(e, 0) for e in employees}
    want_points = {e: 10 * truth.shares[e] + truth.clicks.get(e, 0) for e in employees}
    await wait_exact(lambda: metrics_clicks(s, tenant, employees), want_clicks, timeout=30, what="metrics")
    await wait_exact(lambda: leaderboard_points(s, tenant), want_points, timeout=30, what="points")
    assert {svc: (s.process(svc).pid, s.process(svc).starts) for svc in starts} == starts, "a consumer restarted"
    record(
        "5-dead-letters",
        clicks=CLICKS,
        malformed=BAD,
        dead_lettered_per_group=BAD,
        dlq_latency_max_s=round(max(latencies), 3),
        dlq_latency_mean_s=round(sum(latencies) / len(latencies), 3),
    )
