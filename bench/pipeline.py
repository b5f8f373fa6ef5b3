"""Benchmark 2: the consumer pipeline against its ceiling.

200,000 ``share.clicked`` events are produced to ``advocacy.clicks``; metrics and gamification
(each one worker process) apply them; the rate is events / (last applied - first applied), read
from each service's inbox timestamps. The ceiling is a bare aiokafka consumer that only reads,
parses the JSON and commits offsets, on the same events in the same run. Then the totals are
checked: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from advocacy_common import topics
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.kafka import make_producer
from bench.common import append_results
from bench.stackutil import BenchStack, bench_stack

N = int(os.environ.get("BENCH_PIPELINE_EVENTS", "200000"))
EMPLOYEES = 2000


async def produce(bootstrap: str, tenant: str, n: int) -> float:
    producer = make_producer(bootstrap, linger_ms=20)
    await producer.start()
    start = datetime.now(UTC) - timedelta(days=10)
    t0 = time.perf_counter()
    try:
        pending = []
        for i in range(n):
            e = i % EMPLOYEES
            data = ShareClicked(
                click_id=uuid.uuid4().hex, share_id=f"s{e}", code=f"code{e:06d}", content_id=f"c{i % 50}",
                employee_id=f"emp{e}", network="linkedin", clicked_at=start + timedelta(seconds=i * 4),
                verdict=Verdict.counted, team=f"team{e % 20}",
            )  # fmt: skip
            env = new_event("/advocacy/sharing", tenant, data, at=data.clicked_at)
            pending.append(await producer.send(env.topic, env.value(), key=env.key.encode(), headers=env.headers()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def bare_consumer(bootstrap: str, n: int) -> float:
    """Ceiling: read, parse, commit. Returns events per second (first record to last)."""
    consumer = AIOKafkaConsumer(
        topics.CLICKS, bootstrap_servers=bootstrap, group_id=f"bare-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1000,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    first = last = 0.0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for recs in batch.values():
                for r in recs:
                    orjson.loads(r.value)
                    if not first:
                        first = time.perf_counter()
                    seen += 1
            if batch:
                await consumer.commit()
                last = time.perf_counter()
    finally:
        await consumer.stop()
    return n / (last - first)


async def applied(stack: BenchStack, svc: str, fact_sql: str) -> tuple[int, float | None]:
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        count = await conn.fetchval(fact_sql)
        span = await conn.fetchval(
            "SELECT EXTRACT(EPOCH FROM max(processed_at) - min(processed_at)) FROM inbox "
            "WHERE event_type = 'io.advocacy.share.clicked.v1'"
        )
    finally:
        await conn.close()
    return int(count or 0), float(span) if span is not None else None


async def run(stack: BenchStack) -> dict[str, float]:
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    produce_s = await produce(stack.broker.bootstrap, tenant, N)
    ceiling = await bare_consumer(stack.broker.bootstrap, N)
    checks = {
        "metrics": f"SELECT coalesce(sum(clicks_counted), 0) FROM daily_stats WHERE tenant_id = '{tenant}'",
        "gamification": f"SELECT count(*) FROM ledger WHERE tenant_id = '{tenant}'",
    }
    results: dict[str, float] = {"produce_rate": N / produce_s, "ceiling": ceiling}
    deadline = time.monotonic() + 900
    while True:
        done = {svc: await applied(stack, svc, sql) for svc, sql in checks.items()}
        if all(count >= N for count, _ in done.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    for svc, (count, span) in done.items():
        results[f"{svc}_count"] = count
        results[f"{svc}_rate"] = N / span if span else float("nan")
    return results


def main() -> None:
    with bench_stack(["metrics", "gamification"]) as stack:
        r = asyncio.run(run(stack))
        rss = stack.rss_mb()
    lines = [
        f"{N:,} `share.clicked.v1` events, 2,000 employees, one tenant, 6 partitions; one worker process per service.",
        "",
        "| consumer | events/s | ratio to bare | applied (exact?) |",
        "|---|---|---|---|",
        f"| bare aiokafka (read + parse + commit) | {r['ceiling']:,.0f} | 1.00 | — |",
    ]
    for svc in ("metrics", "gamification"):
        count = int(r[f"{svc}_count"])
        lines.append(
            f"| {svc} worker | {r[f'{svc}_rate']:,.0f} | {r[f'{svc}_rate'] / r['ceiling']:.2f} | "
            f"{count:,} ({'exact' if count == N else 'MISMATCH'}) |"
        )
    lines += ["", f"Produced at {r['produce_rate']:,.0f} events/s. Target: each consumer ≥ 0.30 of the bare rate."]
    lines += ["", "Resident memory after the run: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items())]
    body = "\n".join(lines)
    print(body)
    append_results("Pipeline: consumers vs a bare aiokafka consumer", body)


if __name__ == "__main__":
    main()
