"""Benchmark 2: the consumer pipeline against its ceiling.

200,000 ``share.clicked`` events are produced to ``advocacy.clicks`` before any consumer runs (a
backlog). Then, one at a time with the machine otherwise idle: the ceiling, a bare aiokafka
consumer that only reads, parses the JSON and commits offsets; the metrics service; the
gamification service (each one process, started on the backlog and stopped once it has drained
it). A service's rate is events / (last applied - first applied), read from its inbox timestamps
(for clicks, which both services key without an inbox row: the commit timestamps of their click rows).
Then the totals are checked: nothing lost, nothing doubled.

The ceiling is measured around every consumer, not once: bare, metrics, bare, gamification, bare
(``BARE_RUNS`` drains of the whole backlog, each in its own group, per slot). On the shared 2-core
machine one bare drain swung 57,890-93,303 events/s between runs a minute apart, so a consumer's
ratio is to the median of the bare drains just before and just after it, and every sample is printed.

One such sequence is a round, on a fresh stack (its own PostgreSQL, broker and backlog): a consumer's
drain cannot be repeated on the same backlog (its rows are there). The consumers' drains swing as much
as the bare ones (gamification 0.15-0.22 of bare over ten drains of one tree, 2026-12-04), so one drain
each is one sample against two to four on the ceiling's side. ``ROUNDS`` rounds (3 by default) give
each consumer as many ratios, each paired with the bare drains around it in its own round; the table
gives the median of those ratios and of the rates, the largest RSS, and every round's drains below it.

Why a backlog, one consumer at a time: consumers running while the events are produced can go no
faster than the producer (about 6,000 events/s here), and two consumers sharing the 2 cores with
each other, the producer and the broker are not comparable with a bare consumer running on its
own. Metrics also consumes the ``points.awarded.v2`` events gamification publishes (one per person
per batch, ADR 0019): that drain is measured last, as its own line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from advocacy_common import topics
from advocacy_common.auth import ensure_dev_keys
from advocacy_common.consumer import TRIM_AFTER_RECORDS
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.kafka import make_producer
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from advocacy_dev.devstack.stack import ProcessStack
from bench.common import append_results
from bench.stackutil import BenchStack

N = int(os.environ.get("BENCH_PIPELINE_EVENTS", "200000"))
#: The consumers measured after the bare one (``BENCH_PIPELINE_CONSUMERS=gamification`` measures that
#: one alone; metrics' drain of the ``points.awarded`` events runs only when both are measured).
CONSUMERS = tuple(c for c in os.environ.get("BENCH_PIPELINE_CONSUMERS", "metrics,gamification").split(",") if c)
EMPLOYEES = 2000
#: The measured consumers' role: ``worker``, as production runs them (deploy/k8s/base/<service>/worker.yaml:
#: consumers, relay and schedulers, no API, so no token keys loaded); ``all`` as ``make run`` does.
ROLE = os.environ.get("BENCH_PIPELINE_ROLE", "worker")
#: Bare drains per slot (before the first consumer, between consumers, after the last).
BARE_RUNS = int(os.environ.get("BENCH_PIPELINE_BARE_RUNS", "2"))
#: Rounds, each on a fresh stack (``BENCH_PIPELINE_ROUNDS=1``: one sequence, as before 2026-12-04).
ROUNDS = max(1, int(os.environ.get("BENCH_PIPELINE_ROUNDS", "3")))


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


CLICKED = "io.advocacy.share.clicked.v1"
COMMIT_TIMESTAMPS = {"track_commit_timestamp": "on"}
#: Metrics and gamification record clicks without an inbox row (docs/adr/0021-fact-keyed-events-skip-the-inbox.md,
#: 0022-gamification-clicks-skip-the-inbox.md): the span is the first to the last commit of a transaction
#: that wrote a click's row (metrics' click fact, gamification's award). The inbox's ``processed_at`` is each
#: batch's transaction start: both leave one batch out of the span.
CLICK_ROWS = {
    "metrics": "click_facts WHERE tenant_id = $1",
    "gamification": "ledger WHERE tenant_id = $1 AND action = 'click' AND entry_type = 'award'",
}
FACT_SPAN = (
    "SELECT EXTRACT(EPOCH FROM max(ts) - min(ts)), count(*) "
    "FROM (SELECT pg_xact_commit_timestamp(xmin) AS ts FROM {rows}) f"
)
AWARDED = "io.advocacy.points.awarded.v2"


@contextlib.contextmanager
def prepared_stack(services: list[str]) -> Iterator[BenchStack]:
    """PostgreSQL, broker, databases, topics and migrations; the services are not started."""
    with tempfile.TemporaryDirectory(prefix="advocacy-bench-") as tmp:
        root = Path(tmp)
        # commit timestamps: metrics' click facts carry no inbox row (ADR 0021), their span is read from xmin
        pg = EmbeddedPostgres(root / "pg", free_port(), settings={**FAST_UNSAFE_SETTINGS, **COMMIT_TIMESTAMPS})
        broker = TansuBroker(free_port(), log_path=root / "tansu.log")
        pg.start()
        broker.start()
        try:
            keys = ensure_dev_keys(root / "keys")
            stack = ProcessStack(
                server_url=pg.server_url,
                bootstrap=broker.bootstrap,
                jwks_path=keys.jwks_path,
                data_dir=root / "stack",
                ports={svc: free_port() for svc in services},
                log_json=True,
                role=ROLE,
            )
            stack.prepare()
            try:
                yield BenchStack(root, pg, broker, keys, stack)
            finally:
                stack.stop()
        finally:
            broker.stop()
            pg.stop()


async def applied(
    stack: BenchStack, svc: str, fact_sql: str, event_type: str, tenant: str = ""
) -> tuple[int, float | None, int]:
    """(facts counted, seconds from first to last applied event of ``event_type``, events of it applied)."""
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        count = await conn.fetchval(fact_sql) if fact_sql else 0
        if svc in CLICK_ROWS and event_type == CLICKED:
            row = await conn.fetchrow(FACT_SPAN.format(rows=CLICK_ROWS[svc]), tenant)
        else:
            row = await conn.fetchrow(
                "SELECT EXTRACT(EPOCH FROM max(processed_at) - min(processed_at)), count(*) "
                "FROM inbox WHERE event_type = $1",
                event_type,
            )
    finally:
        await conn.close()
    return int(count or 0), float(row[0]) if row[0] is not None else None, int(row[1])


async def caught_up(stack: BenchStack, group: str, topic: str) -> None:
    """Until ``group`` has committed offsets at the end of every partition of ``topic``. Asked of the
    broker, not the database: polling the inbox (a scan) every half second took a sixth of a core
    from the database the measured consumer was writing to."""
    tps = [TopicPartition(topic, p) for p in range(stack.services.partitions)]
    ends_from = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.broker.bootstrap)
    await ends_from.start()
    await admin.start()
    try:
        ends = await ends_from.end_offsets(tps)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            done = await admin.list_consumer_group_offsets(group, partitions=tps)
            if all(tp in done and done[tp].offset >= ends[tp] for tp in tps):
                return
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
        await ends_from.stop()


async def drain(
    stack: BenchStack, svc: str, fact_sql: str, event_type: str, want: int, tenant: str = ""
) -> tuple[int, float]:
    """Start ``svc`` on the backlog, wait until its group has consumed the topic of ``event_type``,
    then count ``want`` events of ``event_type`` applied (and ``fact_sql`` counting ``want`` when
    given); return (facts counted, events/s). The service keeps running."""
    proc = stack.services.process(svc)
    proc.start()
    await asyncio.to_thread(proc.wait_ready, 60.0)
    await caught_up(stack, svc, topics.CLICKS if event_type == CLICKED else topics.GAMIFICATION)
    deadline = time.monotonic() + 60
    while True:  # offsets are committed after the database: everything is there by now
        count, span, seen = await applied(stack, svc, fact_sql, event_type, tenant)
        if (seen >= want and (not fact_sql or count >= want)) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    return count, (seen / span if span else float("nan"))


async def inbox_rate(stack: BenchStack, svc: str, event_type: str) -> float:
    """Events of ``event_type`` per second by the inbox's timestamps (nan: none claimed there)."""
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        span, seen = await conn.fetchrow(
            "SELECT EXTRACT(EPOCH FROM max(processed_at) - min(processed_at)), count(*) FROM inbox "
            "WHERE event_type = $1",
            event_type,
        )
    finally:
        await conn.close()
    return seen / float(span) if span else float("nan")


def rss_of(stack: BenchStack, svc: str) -> float:
    return stack.rss_mb().get(svc, float("nan"))


#: How long a drained consumer may take to give its freed memory back (it does so on its next empty
#: fetch, 0.2 s after the last batch; the full collection before the trim takes well under a second).
TRIM_WAIT_SECONDS = 30.0
_TRIMMED_AT = re.compile(rb"^advocacy_heap_trimmed_at_seconds ([0-9.e+]+)$", re.MULTILINE)


async def last_commit(stack: BenchStack, svc: str, event_type: str, tenant: str) -> float | None:
    """When the last transaction that applied an event of ``event_type`` committed (epoch seconds;
    None: none wrote a row). Clicks leave no inbox row (ADR 0021, 0022): their click rows'."""
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        if svc in CLICK_ROWS and event_type == CLICKED:
            sql, arg = f"SELECT max(pg_xact_commit_timestamp(xmin)) FROM {CLICK_ROWS[svc]}", tenant
        else:
            sql, arg = "SELECT max(pg_xact_commit_timestamp(xmin)) FROM inbox WHERE event_type = $1", event_type
        at = await conn.fetchval(sql, arg)
    finally:
        await conn.close()
    return at.timestamp() if at is not None else None


async def rss_after_trim(stack: BenchStack, svc: str, drained: int, since: float | None) -> tuple[float, bool]:
    """(RSS of ``svc``, whether it was read after the trim that follows its drain). The consumer gives
    freed memory back once it catches up after at least ``TRIM_AFTER_RECORDS`` records, and exports when
    (``advocacy_heap_trimmed_at_seconds``): the RSS is read once that time passes ``since``, the last
    applied commit (an earlier trim, on an empty fetch in the middle of the backlog, does not count)."""
    if drained >= TRIM_AFTER_RECORDS:
        url = stack.services.url(svc) + "/metrics"
        deadline = time.monotonic() + TRIM_WAIT_SECONDS
        async with httpx.AsyncClient(timeout=5.0) as client:
            while time.monotonic() < deadline:
                found = _TRIMMED_AT.search((await client.get(url)).content)
                if found and float(found.group(1)) > (since or 0.0):
                    return rss_of(stack, svc), True
                await asyncio.sleep(0.2)
    return rss_of(stack, svc), False


async def outbox_drained(stack: BenchStack, svc: str, event_type: str) -> int:
    """Once ``svc``'s outbox is all published: how many ``event_type`` events it holds."""
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            await asyncio.sleep(0.5)
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE event_type = $1", event_type))
    finally:
        await conn.close()


async def bare_slot(bootstrap: str, n: int) -> list[float]:
    """``BARE_RUNS`` bare drains of the backlog, one after the other (events/s each)."""
    return [await bare_consumer(bootstrap, n) for _ in range(max(1, BARE_RUNS))]


def bare_around(slots: list[list[float]], i: int) -> list[float]:
    """The bare samples just before and just after the ``i``-th consumer."""
    return slots[i] + slots[i + 1]


async def run(stack: BenchStack) -> dict[str, float]:
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    produce_s = await produce(stack.broker.bootstrap, tenant, N)
    results: dict[str, float] = {"produce_rate": N / produce_s}
    bare: list[list[float]] = [await bare_slot(stack.broker.bootstrap, N)]
    checks = {
        "metrics": f"SELECT coalesce(sum(clicks_counted), 0) FROM daily_stats WHERE tenant_id = '{tenant}'",
        "gamification": f"SELECT count(*) FROM ledger WHERE tenant_id = '{tenant}'",
    }
    for i, svc in enumerate(CONSUMERS):
        proc = stack.services.process(svc)
        count, rate = await drain(stack, svc, checks[svc], CLICKED, N, tenant)
        results[f"{svc}_count"], results[f"{svc}_rate"] = count, rate
        results[f"{svc}_rss_before_trim"] = rss_of(stack, svc)
        since = await last_commit(stack, svc, CLICKED, tenant)
        results[f"{svc}_rss"], results[f"{svc}_trimmed"] = await rss_after_trim(stack, svc, N, since)
        if svc == "metrics":  # the inbox's measure too, when the tree still claims clicks there
            results["metrics_inbox_rate"] = await inbox_rate(stack, svc, CLICKED)
        if svc == "gamification":
            # its points.awarded are all on the broker
            results["awarded"] = await outbox_drained(stack, svc, AWARDED)
        await asyncio.to_thread(proc.terminate)
        bare.append(await bare_slot(stack.broker.bootstrap, N))
        results[f"{svc}_ceiling"] = statistics.median(bare_around(bare, i))
    for i, slot in enumerate(bare):
        for j, sample in enumerate(slot):
            results[f"bare_{i}_{j}"] = sample
    # the table's one ceiling (docs/capacity.md reads it): the median of every bare drain
    results["ceiling"] = statistics.median(x for slot in bare for x in slot)
    if CONSUMERS != ("metrics", "gamification"):
        return results
    # metrics again, on the points.awarded events gamification published meanwhile
    # metrics neither decodes nor claims them now (ConsumerSpec.types): nothing to wait for in its inbox,
    # only its group at the end of the topic (want 0); then the rate is nan and the wall time is shown
    started = time.perf_counter()
    _, results["metrics_awarded_rate"] = await drain(stack, "metrics", "", AWARDED, 0)
    results["metrics_awarded_seconds"] = time.perf_counter() - started
    since = await last_commit(stack, "metrics", AWARDED, tenant)
    results["metrics_rss_after_awarded"], results["metrics_awarded_trimmed"] = await rss_after_trim(
        stack, "metrics", int(results["awarded"]), since
    )
    return results


def one_round() -> dict[str, float]:
    """One sequence (bare, each consumer, bare after each) on a fresh stack and backlog."""
    with prepared_stack(["metrics", "gamification"]) as stack:
        return asyncio.run(run(stack))


def drains_in_order(r: dict[str, float]) -> str:
    order = ["bare", *(x for svc in CONSUMERS for x in (svc, "bare"))]
    samples: list[str] = []
    slot = 0
    for step in order:
        if step == "bare":
            samples.append("bare " + " / ".join(f"{r[f'bare_{slot}_{j}']:,.0f}" for j in range(max(1, BARE_RUNS))))
            slot += 1
        else:
            samples.append(f"{step} {r[f'{step}_rate']:,.0f} ({r[f'{step}_rate'] / r[f'{step}_ceiling']:.2f})")
    return " → ".join(samples)


def main() -> None:
    rounds: list[dict[str, float]] = []
    for k in range(ROUNDS):
        print(f"pipeline: round {k + 1} of {ROUNDS}", flush=True)
        rounds.append(one_round())
    body = report(rounds)
    print(body)
    append_results("Pipeline: consumers vs a bare aiokafka consumer", body)


def report(rounds: list[dict[str, float]]) -> str:
    """The section's text from each round's figures (``run``'s dict)."""
    n_rounds = len(rounds)
    bare_all = [r[f"bare_{i}_{j}"] for r in rounds for i in range(len(CONSUMERS) + 1) for j in range(max(1, BARE_RUNS))]
    lines = [
        f"{N:,} `share.clicked.v1` events, 2,000 employees, one tenant, 6 partitions, produced before any consumer "
        "starts; then the backlog is drained one process at a time, the others stopped (role "
        f"`{ROLE}`): {BARE_RUNS} bare drain(s), then each consumer followed by {BARE_RUNS} bare drain(s). "
        "A consumer's ratio is to the median of the bare drains just before and just after it. "
        f"{n_rounds} round(s), each on a fresh stack and backlog: the table gives the median of each consumer's "
        "ratios and rates over the rounds, and the largest RSS after.",
        "",
        "| consumer | events/s | ratio to bare | applied (exact?) | RSS after |",
        "|---|---|---|---|---|",
        f"| bare aiokafka (read + parse + commit), median of all | {statistics.median(bare_all):,.0f} | 1.00 | — | — |",
    ]
    for svc in CONSUMERS:
        counts = [int(r[f"{svc}_count"]) for r in rounds]
        ratios = [r[f"{svc}_rate"] / r[f"{svc}_ceiling"] for r in rounds]
        rss = max(rounds, key=lambda r: r[f"{svc}_rss"])
        exact = all(c == N for c in counts)
        applied = "exact" if exact else "MISMATCH: " + ", ".join(f"{c:,}" for c in counts)
        lines.append(
            f"| {svc} | {statistics.median(r[f'{svc}_rate'] for r in rounds):,.0f} | {statistics.median(ratios):.2f} "
            f"({', '.join(f'{x:.2f}' for x in ratios)}) | "
            f"{N:,} in each of {n_rounds} ({applied}) | "
            f"{rss[f'{svc}_rss']:.0f} MB{'' if rss[f'{svc}_trimmed'] else ' (no trim seen)'} |"
        )
    lines += [""]
    lines += [f"Round {k + 1}, every drain in order (events/s): {drains_in_order(r)}." for k, r in enumerate(rounds)]
    lines += [
        "",
        "Produced at " + " / ".join(f"{r['produce_rate']:,.0f}" for r in rounds) + " events/s. "
        "Targets (issue 19): metrics ≥ 0.30, gamification ≥ 0.20 of the bare rate.",
    ]
    lines.append(
        "RSS after: read once the consumer has given back what the drain freed (its "
        "`advocacy_heap_trimmed_at_seconds` later than its last applied commit); as soon as the group reached "
        "the end of the topic it was "
        + ", ".join(
            f"{svc} " + " / ".join(f"{r[f'{svc}_rss_before_trim']:.0f}" for r in rounds) + " MB" for svc in CONSUMERS
        )
        + "."
    )
    last = rounds[-1]
    if last.get("metrics_inbox_rate", float("nan")) == last.get("metrics_inbox_rate"):  # not nan
        lines.append(
            f"Metrics by its inbox's timestamps (clicks claimed there, last round): {last['metrics_inbox_rate']:,.0f} "
            f"events/s ({last['metrics_inbox_rate'] / last['metrics_ceiling']:.2f}); "
            "the table's figure is from the click facts' commits."
        )
    if "metrics_awarded_rate" in last:
        ignored = last["metrics_awarded_rate"] != last["metrics_awarded_rate"]  # nan: none claimed
        lines.append(
            f"Metrics then drained the {int(last['awarded']):,} `points.awarded.v2` events gamification published "
            "(last round)"
            + (
                f": neither decoded nor claimed (ConsumerSpec.types), at the topic's end "
                f"{last['metrics_awarded_seconds']:.1f} s after its start (start-up included); "
                if ignored
                else f" at {last['metrics_awarded_rate']:,.0f} events/s (claimed in the inbox, not aggregated); "
            )
            + f"RSS after: {last['metrics_rss_after_awarded']:.0f} MB"
            f"{'' if last['metrics_awarded_trimmed'] else ' (no trim: under TRIM_AFTER_RECORDS, or none seen)'}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
