"""What one click costs the platform, end to end: CPU per service, database writes and bytes, broker
messages and bytes (the inputs of docs/capacity.md, issue 19 item 4).

The four services on a throwaway embedded stack (one process each, role ``all``), one tenant, one
content item shared by ``SHARERS`` people. ``CLICKS`` clicks through ``/r/{code}`` (browsers, each
visitor in a /24 of its own: people, counted) at ``RATE`` a second; once every click is judged by
sharing, awarded by gamification and counted by metrics (their tables stop moving), the deltas of:

- CPU seconds of each service process, of PostgreSQL (postmaster and backends) and of Tansu;
- per database: rows inserted, updated and deleted (``pg_stat_database``; the statistics are read
  after ``STATS_FLUSH_SECONDS``: backends flush them at most that late), transactions committed,
  and the size of its tables with their indexes and TOAST (``pg_total_relation_size``);
- the WAL written (``pg_current_wal_lsn``: the whole cluster, with ``full_page_writes`` off, as
  on this stack: a production server writes more after each checkpoint);
- the broker's records and bytes (key, value, headers) per topic, read back from the start (the
  stack is new: the set-up's few events are in it too).

Each figure is divided by the clicks answered 302. The section it appends carries the figures as
JSON too, for ``bench.capacity``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from typing import Any

import asyncpg
import httpx
import psutil

from advocacy_common.auth import mint_token
from bench.common import append_results
from bench.leaderboard import drive
from bench.stackutil import BenchStack, bench_stack

SERVICES = ["content", "sharing", "metrics", "gamification"]
DATABASES = {svc: f"advocacy_{svc}" for svc in SERVICES}
CLICKS = int(os.environ.get("BENCH_COST_CLICKS", "20000"))
RATE = int(os.environ.get("BENCH_COST_RATE", "500"))
SHARERS = 50
# Bounds, not speed claims: the consumers' catch-up after the last click; how long the numbers must
# stay still to count as settled; how late a backend may flush its statistics (PostgreSQL 15+).
SETTLE_TIMEOUT = 600.0
STILL_SECONDS = 5.0
STATS_FLUSH_SECONDS = 11.0
TITLE = "Click cost: CPU, database writes and bytes, broker traffic per click"


def cpu_seconds(pid: int | None, *, children: bool) -> float:
    """User + system CPU of ``pid`` (and of its live children and reaped ones, if ``children``)."""
    if not pid:
        return 0.0
    try:
        p = psutil.Process(pid)
        t = p.cpu_times()
        total = float(t.user + t.system)
        if children:
            total += float(t.children_user + t.children_system)
            for c in p.children(recursive=True):
                try:
                    ct = c.cpu_times()
                    total += float(ct.user + ct.system)
                except psutil.NoSuchProcess:
                    continue
        return total
    except psutil.NoSuchProcess:
        return 0.0


def cpu(stack: BenchStack) -> dict[str, float]:
    out = {svc: cpu_seconds(proc.pid, children=True) for svc, proc in stack.services.processes.items()}
    out["postgres"] = cpu_seconds(stack.pg._pid, children=True)
    out["tansu"] = cpu_seconds(stack.broker.pid, children=False)
    return out


async def database_stats(stack: BenchStack) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for svc, name in DATABASES.items():
        conn = await asyncpg.connect(stack.pg.database_url(name, driver=None))
        try:
            row = await conn.fetchrow(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
                " WHERE datname = current_database()"
            )
            size = await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_stat_user_tables"
            )
            wal = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        finally:
            await conn.close()
        assert row is not None
        out[svc] = {
            "commits": float(row["xact_commit"]),
            "rows_written": float(row["tup_inserted"] + row["tup_updated"] + row["tup_deleted"]),
            "inserted": float(row["tup_inserted"]),
            "updated": float(row["tup_updated"]),
            "deleted": float(row["tup_deleted"]),
            "table_bytes": float(size),
        }
        out["cluster"] = {"wal_bytes": float(wal)}
    return out


async def progress(stack: BenchStack, tenant: str) -> tuple[int, int, int]:
    """(clicks judged by sharing, click awards in gamification's ledger, clicks in metrics' facts)."""
    queries = {
        "sharing": "SELECT count(*) FROM clicks WHERE tenant_id = $1",
        "gamification": "SELECT count(*) FROM ledger WHERE tenant_id = $1 AND action = 'click'",
        "metrics": "SELECT count(*) FROM click_facts WHERE tenant_id = $1",
    }
    got = []
    for svc, sql in queries.items():
        conn = await asyncpg.connect(stack.pg.database_url(DATABASES[svc], driver=None))
        try:
            got.append(int(await conn.fetchval(sql, tenant)))
        finally:
            await conn.close()
    return got[0], got[1], got[2]


async def broker_traffic(stack: BenchStack) -> dict[str, dict[str, float]]:
    """Records and bytes (key + value + headers) of every ``advocacy.*`` topic, from the start."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: dict[str, dict[str, float]] = {}
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith("advocacy."))
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            stats = out.setdefault(tp.topic, {"records": 0.0, "bytes": 0.0})
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=2000, max_records=5000)
                for msg in batch.get(tp, []):
                    stats["records"] += 1
                    stats["bytes"] += len(msg.key or b"") + len(msg.value or b"")
                    stats["bytes"] += sum(len(k) + len(v or b"") for k, v in msg.headers or ())
                if not batch:
                    break
    finally:
        await consumer.stop()
    return {t: s for t, s in out.items() if s["records"]}


async def set_up(stack: BenchStack, tenant: str) -> list[str]:
    """One content item and ``SHARERS`` shares of it: their codes."""
    from tests.support.helpers import eventually

    def client(svc: str, sub: str, role: str = "employee") -> httpx.AsyncClient:
        token = mint_token(stack.keys, tenant=tenant, sub=sub, roles=[role])
        return httpx.AsyncClient(
            base_url=stack.services.url(svc), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    async with client("content", "admin", "admin") as content:
        r = await content.post("/v1/content", json={"title": "Capacity", "url": "https://example.com/capacity"})
        assert r.status_code == 201, r.text
        content_id = r.json()["id"]
    codes = []
    for k in range(SHARERS):
        async with client("sharing", f"sharer{k:03d}") as sharing:

            async def share(sharing: httpx.AsyncClient = sharing) -> str | None:
                r = await sharing.post("/v1/shares", json={"content_id": content_id, "network": "linkedin"})
                return None if r.status_code == 404 else str(r.json()["code"])

            codes.append(await eventually(share, timeout=60, what="sharing learns the content"))
    return codes


async def settle(stack: BenchStack, tenant: str, answered: int) -> tuple[tuple[int, int, int], float]:
    """Waits until sharing judged every answered click and the consumers' counts stop moving."""
    t0 = time.monotonic()
    last, still_since = (-1, -1, -1), time.monotonic()
    while time.monotonic() - t0 < SETTLE_TIMEOUT:
        now = await progress(stack, tenant)
        if now != last:
            last, still_since = now, time.monotonic()
        elif now[0] >= answered and time.monotonic() - still_since >= STILL_SECONDS:
            return now, still_since - t0  # when the counts last moved
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not settled after {SETTLE_TIMEOUT:.0f} s: {last} of {answered}")


async def measure(stack: BenchStack) -> dict[str, Any]:
    tenant = f"bench-cost-{uuid.uuid4().hex[:6]}"
    codes = await set_up(stack, tenant)
    await settle(stack, tenant, 0)
    # the stack's own CPU while idle (schedulers, relays, polls), taken off the clicks' below
    idle_from, idle_t0 = cpu(stack), time.monotonic()
    await asyncio.sleep(STATS_FLUSH_SECONDS)
    db_before, cpu_before, t0 = await database_stats(stack), cpu(stack), time.monotonic()
    idle_per_s = {k: (cpu_before[k] - idle_from[k]) / (t0 - idle_t0) for k in cpu_before}
    rng = random.Random(19)
    plan = [(f"e{i}", rng.choice(codes)) for i in range(CLICKS)]
    done, achieved = await drive(stack.services.url("sharing"), plan, RATE)
    answered = sum(1 for _, _, status in done if status == 302)
    counts, settle_s = await settle(stack, tenant, answered)
    cpu_after, wall = cpu(stack), time.monotonic() - t0
    await asyncio.sleep(STATS_FLUSH_SECONDS)
    db_after = await database_stats(stack)
    traffic = await broker_traffic(stack)
    per = float(answered)
    db = {
        svc: {k: (db_after[svc][k] - db_before[svc][k]) / per for k in db_after[svc]}
        for svc in db_after
        if svc != "cluster"
    }
    return {
        "clicks": answered,
        "offered_rate": RATE,
        "achieved_rate": round(achieved, 1),
        "wall_seconds": round(wall, 1),
        "settle_seconds_after_last_click": round(settle_s, 1),
        "judged_awarded_counted": list(counts),
        "load_average": list(os.getloadavg()),
        "cpu_ms_per_click": {
            k: max(0.0, 1000 * (cpu_after[k] - cpu_before[k] - idle_per_s[k] * wall) / per) for k in cpu_after
        },
        "idle_cpu_per_s": idle_per_s,
        "db_per_click": db,
        "wal_bytes_per_click": (db_after["cluster"]["wal_bytes"] - db_before["cluster"]["wal_bytes"]) / per,
        "broker_per_click": {t: {k: v / per for k, v in s.items()} for t, s in traffic.items()},
    }


def report(r: dict[str, Any]) -> str:
    judged, awarded, counted = r["judged_awarded_counted"]
    lines = [
        f"{r['clicks']:,} clicks answered 302 (offered {r['offered_rate']}/s, achieved {r['achieved_rate']}/s), "
        f"{SHARERS} sharers of one item, one tenant; four services, one process each (role `all`), on "
        f"an embedded PostgreSQL (fsync, synchronous_commit and full_page_writes off) and Tansu (memory).",
        f"Judged by sharing: {judged:,}; click awards in gamification's ledger: {awarded:,}; click facts in "
        f"metrics: {counted:,}; the counts last moved {r['settle_seconds_after_last_click']} s after the "
        f"last click. Load average at the end: {' / '.join(f'{x:.1f}' for x in r['load_average'])}.",
        "CPU is each part's CPU time over the run less its idle rate (measured just before) times the "
        "run's wall time, divided by the clicks.",
        "",
        "| per click | CPU ms (less idle) | rows written (ins / upd / del) | commits | table + index bytes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for svc in SERVICES:
        d = r["db_per_click"][svc]
        lines.append(
            f"| {svc} | {r['cpu_ms_per_click'][svc]:.3f} | {d['rows_written']:.2f} "
            f"({d['inserted']:.2f} / {d['updated']:.2f} / {d['deleted']:.2f}) | {d['commits']:.3f} "
            f"| {d['table_bytes']:.0f} |"
        )
    lines.append(f"| postgres (all databases) | {r['cpu_ms_per_click']['postgres']:.3f} | | | |")
    lines.append(f"| tansu | {r['cpu_ms_per_click']['tansu']:.3f} | | | |")
    lines += [
        "",
        f"WAL per click (the cluster): {r['wal_bytes_per_click']:.0f} bytes.",
        "",
        "| topic | records per click | bytes per click (key + value + headers) |",
        "| --- | ---: | ---: |",
    ]
    for topic, s in sorted(r["broker_per_click"].items()):
        lines.append(f"| {topic} | {s['records']:.3f} | {s['bytes']:.0f} |")
    lines += ["", "```json", json.dumps(r, sort_keys=True), "```"]
    return "\n".join(lines)


def main() -> None:
    with bench_stack(SERVICES) as stack:
        result = asyncio.run(measure(stack))
    body = report(result)
    print(body)
    append_results(TITLE, body)


if __name__ == "__main__":
    main()
