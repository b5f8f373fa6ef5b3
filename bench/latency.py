"""Click -> live board: the 302 -> SSE latency, stage by stage, against docs/latency-budget.md.

Content, sharing and gamification as processes (role ``all``) on a throwaway embedded stack; 20
employees share a link each, an SSE stream of the top 50 is open on gamification, and clicks on
/r/{code} are paced at each rate (250, 500, 1,000 a second by default) for 60 s, distinct visitors,
a browser user agent. ``uptime`` is read before and after each rate: on a shared 2-core machine the
latency follows the load.

Every click is followed by its id (the 302's Location carries it) through the timestamps the
pipeline already leaves behind, all from the one host clock:

==============  =================================================================================
stage           from -> to
==============  =================================================================================
send            the 302 (client) -> the raw click's Kafka timestamp on ``advocacy.clicks.raw``
                (journal append, the sender's wake-up, the produce)
verdict_wait    -> sharing's verdict transaction began (its inbox row's ``processed_at``): the
                consumer's fetch, and the batch before it
verdict_batch   -> that transaction committed (``pg_xact_commit_timestamp`` of the inbox row;
                PostgreSQL runs with ``track_commit_timestamp=on`` here)
relay           -> the ``share.clicked`` record's Kafka timestamp on ``advocacy.clicks`` (the
                outbox relay's poll and publish)
award_wait      -> gamification's transaction began (its inbox row)
award_batch     -> that transaction committed (the NOTIFY is delivered then)
board           -> the first SSE message showing the click (the feed's coalescing interval, the
                board read, the write)
==============  =================================================================================

The SSE time of a click: for each sharer, the n-th 302 is matched with the first message showing
at least n clicks for them (the board counts, it does not name clicks). The stages of one click add
up to its total. Each stage's p99 is checked against its budget in docs/latency-budget.md (the
table there is parsed, so the doc and the check cannot drift apart): PASS or FAIL per stage.

``python -m bench latency``; ``python -m bench.latency 1000`` runs one rate.
BENCH_LATENCY_SECONDS sets the seconds per rate (default 60).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from advocacy_common import topics
from advocacy_common.auth import mint_token
from bench.common import append_results, percentile
from bench.leaderboard import ACCEPT_LANGUAGE, CHROME, CONNECTIONS, SHARERS
from bench.redirect import visitor_address
from bench.stackutil import BenchStack, bench_stack

RATES = (250, 500, 1000)
SECONDS = int(os.environ.get("BENCH_LATENCY_SECONDS", "60"))
WARM_UP = (100, 10)  # clicks/s, seconds: before the measured rates, on a tenant of its own
BUDGET_DOC = Path(__file__).resolve().parents[1] / "docs" / "latency-budget.md"
STAGES = ("send", "verdict_wait", "verdict_batch", "relay", "award_wait", "award_batch", "board")
SHARE_POINTS = 10  # a share is worth 10 points before any click (the default rules)


def budget(doc: Path = BUDGET_DOC) -> dict[str, float]:
    """Milliseconds per stage (and ``total``) from the budget table of docs/latency-budget.md: the
    rows whose first cell is a stage name in backquotes, the second its p99 budget in ms."""
    out: dict[str, float] = {}
    row = re.compile(r"^\|\s*`([a-z_]+)`\s*\|\s*([\d,]+)\s*ms\s*\|")
    for line in doc.read_text().splitlines():
        m = row.match(line)
        if m:
            out[m.group(1)] = float(m.group(2).replace(",", ""))
    missing = [s for s in (*STAGES, "total") if s not in out]
    if missing:
        raise ValueError(f"{doc}: no budget for {missing}")
    return out


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


# -- the load -------------------------------------------------------------------------------------------
async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str, ip: str) -> str:
    """One GET; the click id from the 302's Location (or ``status:<code>`` for any other answer)."""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {CHROME}\r\nX-Forwarded-For: {ip}\r\n"
        f"Accept: text/html\r\nAccept-Language: {ACCEPT_LANGUAGE}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    if status != 302:
        return f"status:{status}"
    return click_id_in(headers.get("location", ""))


def click_id_in(location: str) -> str:
    """The click id the redirect put in the target URL (``adv_click=<id>``, before any fragment)."""
    return location.partition("#")[0].rpartition("adv_click=")[2].partition("&")[0]


@dataclass
class Clicks:
    """What the client saw: per click id, the employee and the wall time of its 302."""

    answered: dict[str, tuple[str, float]] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)  # non-302 answers by status
    achieved_rate: float = 0.0


async def drive(base: str, plan: list[tuple[str, str]], rate: int) -> Clicks:
    host, port = base.removeprefix("http://").split(":")
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    out = Clicks()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (i := await queue.get()) is not None:
                emp, code = plan[i]
                got = await _get(reader, writer, f"{host}:{port}", f"/r/{code}", visitor_address(i))
                if got.startswith("status:"):
                    out.other[got] = out.other.get(got, 0) + 1
                else:
                    out.answered[got] = (emp, time.time())
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(CONNECTIONS)]
    t0 = time.monotonic()
    for i in range(len(plan)):
        if (wait := t0 + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        queue.put_nowait(i)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    out.achieved_rate = len(plan) / (time.monotonic() - t0)
    return out


# -- the timestamps the pipeline left -----------------------------------------------------------------
async def topic_times(stack: BenchStack, topic: str, tenant: str) -> dict[str, tuple[float, bytes]]:
    """ce_id -> (Kafka timestamp in s, value) of every record of ``tenant`` on ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: dict[str, tuple[float, bytes]] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(stack.services.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for recs in batch.values():
                for r in recs:
                    hs = dict(r.headers)
                    if hs.get("ce_tenantid", b"").decode() == tenant:
                        out[hs["ce_id"].decode()] = (r.timestamp / 1000, r.value)
    finally:
        await consumer.stop()
    return out


async def inbox_times(stack: BenchStack, svc: str, event_type: str) -> dict[str, tuple[float, float]]:
    """event id -> (its transaction began, it committed), epoch seconds, from ``svc``'s inbox."""
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        rows = await conn.fetch(
            "SELECT event_id, extract(epoch FROM processed_at)::float8, "
            "extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM inbox WHERE event_type = $1",
            event_type,
        )
    finally:
        await conn.close()
    return {r[0]: (r[1], r[2] if r[2] is not None else r[1]) for r in rows}


def sse_times(clicks: Clicks, messages: Sequence[tuple[float, dict[str, int]]]) -> dict[str, float]:
    """click id -> wall time of the first message that shows it: per sharer, the n-th 302 (in the
    order the client got them) is shown by the first message with at least n clicks."""
    by_emp: dict[str, list[tuple[float, str]]] = {}
    for cid, (emp, t) in clicks.answered.items():
        by_emp.setdefault(emp, []).append((t, cid))
    out: dict[str, float] = {}
    for emp, answered in by_emp.items():
        answered.sort()
        j = 0
        for n, (_, cid) in enumerate(answered, start=1):
            while j < len(messages) and messages[j][1].get(emp, 0) < SHARE_POINTS + n:
                j += 1
            if j == len(messages):
                break
            out[cid] = messages[j][0]
    return out


@dataclass
class Breakdown:
    total: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    unmatched: int = 0


def breakdown(
    clicks: Clicks,
    raw: dict[str, tuple[float, bytes]],
    verdicts: dict[str, tuple[float, float]],
    shared: dict[str, tuple[float, bytes]],
    awards: dict[str, tuple[float, float]],
    shown: dict[str, float],
) -> Breakdown:
    """Per click, the seconds each stage took (negative clock noise between processes clamped to 0)."""
    share_event = {}  # click id -> (share.clicked event id, its Kafka timestamp)
    for event_id, (ts, value) in shared.items():
        share_event[orjson.loads(value)["click_id"]] = (event_id, ts)
    out = Breakdown()
    for cid, (_, t302) in clicks.answered.items():
        try:
            sent = raw[cid][0]
            v_began, v_done = verdicts[cid]
            event_id, relayed = share_event[cid]
            a_began, a_done = awards[event_id]
            seen = shown[cid]
        except KeyError:
            out.unmatched += 1
            continue
        marks = [t302, sent, v_began, v_done, relayed, a_began, a_done, seen]
        for stage, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True):
            out.stages[stage].append(max(0.0, b - a))
        out.total.append(max(0.0, seen - t302))
    return out


# -- one rate -----------------------------------------------------------------------------------------------
async def one_rate(stack: BenchStack, rate: int, seconds: int) -> dict[str, Any]:
    from tests.support.helpers import eventually

    services = stack.services
    tenant = f"bench-lat-{uuid.uuid4().hex[:6]}"

    def client(svc: str, sub: str, role: str = "employee") -> httpx.AsyncClient:
        token = mint_token(stack.keys, tenant=tenant, sub=sub, roles=[role])
        return httpx.AsyncClient(base_url=services.url(svc), headers={"Authorization": f"Bearer {token}"}, timeout=10)

    async with client("content", "admin", "admin") as content:
        r = await content.post("/v1/content", json={"title": "Latency", "url": "https://example.com/latency"})
        assert r.status_code == 201, r.text
        content_id = r.json()["id"]
    codes: dict[str, str] = {}
    for k in range(SHARERS):
        emp = f"sharer{k:02d}"
        async with client("sharing", emp) as sharing:

            async def share(sharing: httpx.AsyncClient = sharing) -> str | None:
                r = await sharing.post("/v1/shares", json={"content_id": content_id, "network": "linkedin"})
                return None if r.status_code == 404 else str(r.json()["code"])

            codes[emp] = await eventually(share, timeout=30, what="sharing learns the content")
    async with client("gamification", "wall") as gam:

        async def everyone_on_the_board() -> bool:
            r = await gam.get("/v1/leaderboard", params={"limit": 50})
            return len(r.json()["items"]) == SHARERS

        await eventually(everyone_on_the_board, timeout=30, what="the shares on the board")
        ticket = (await gam.post("/v1/leaderboard/stream-tickets")).json()["ticket"]
    rng = random.Random(rate)
    plan = [(emp, codes[emp]) for emp in (rng.choice(sorted(codes)) for _ in range(rate * seconds))]
    messages: list[tuple[float, dict[str, int]]] = []
    expected: dict[str, int] = {}
    load_before = uptime()
    async with (
        httpx.AsyncClient(base_url=services.url("gamification"), timeout=httpx.Timeout(10, read=60)) as sse_client,
        sse_client.stream("GET", "/v1/leaderboard/stream", params={"ticket": ticket, "limit": 50}) as resp,
    ):
        settled_event = asyncio.Event()

        async def read() -> None:
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    data = orjson.loads(line[6:])
                    messages.append((time.time(), {i["employee_id"]: i["points"] for i in data["items"]}))
                    if expected and messages[-1][1] == expected:
                        settled_event.set()

        reader = asyncio.create_task(read())
        clicks = await drive(services.url("sharing"), plan, rate)
        last_302 = max((t for _, t in clicks.answered.values()), default=time.time())
        counts = {emp: SHARE_POINTS for emp in codes}
        for emp, _ in clicks.answered.values():
            counts[emp] += 1
        expected.update(counts)
        if messages and messages[-1][1] == expected:
            settled_event.set()
        try:
            await asyncio.wait_for(settled_event.wait(), 60)
            settled = True
        except TimeoutError:
            settled = False
        reader.cancel()
    load_after = uptime()
    raw = await topic_times(stack, topics.CLICKS_RAW, tenant)
    shared = await topic_times(stack, topics.CLICKS, tenant)
    verdicts = await inbox_times(stack, "sharing", "io.advocacy.click.received.v1")
    awards = await inbox_times(stack, "gamification", "io.advocacy.share.clicked.v1")
    if keep := os.environ.get("BENCH_LATENCY_KEEP"):  # the raw times, to look at again later
        Path(keep).mkdir(parents=True, exist_ok=True)
        Path(keep, f"{rate}.json").write_bytes(
            orjson.dumps(
                {
                    "answered": clicks.answered,
                    "messages": messages,
                    "raw": {k: v[0] for k, v in raw.items()},
                    "shared": {k: [v[0], v[1].decode()] for k, v in shared.items()},
                    "verdicts": verdicts,
                    "awards": awards,
                }
            )
        )
    b = breakdown(clicks, raw, verdicts, shared, awards, sse_times(clicks, messages))
    return {
        "rate": rate,
        "seconds": seconds,
        "achieved_rate": clicks.achieved_rate,
        "answered": len(clicks.answered),
        "other": clicks.other,
        "messages": len(messages),
        "settled": settled,
        "settle_after_last_302_s": (messages[-1][0] - last_302) if messages else float("nan"),
        "load_before": load_before,
        "load_after": load_after,
        "breakdown": b,
    }


# -- report -------------------------------------------------------------------------------------------------
def _ms(values: Sequence[float], p: float) -> float:
    return percentile(values, p) * 1000


def verdicts_against(b: Breakdown, limits: dict[str, float]) -> dict[str, bool]:
    """PASS (True) / FAIL per stage and for the total: p99 within its budget."""
    out = {s: _ms(b.stages[s], 99) <= limits[s] for s in STAGES}
    out["total"] = _ms(b.total, 99) <= limits["total"]
    return out


def report(runs: list[dict[str, Any]], limits: dict[str, float]) -> str:
    lines = [
        f"Clicks on /r/{{code}} paced at each rate for {runs[0]['seconds'] if runs else SECONDS} s, {SHARERS} "
        "sharers, distinct visitors, one SSE stream of the top 50 on gamification. Content, sharing and "
        f"gamification (one process each, role `all`) on the same {os.cpu_count()} cores as PostgreSQL, Tansu and "
        "the load generator (a machine shared with other engineers: `uptime` before and after each rate). "
        f"Sharing's load shedding off (`SHARING_REDIRECT_LAG_BUDGET_MS=0`). A warm-up ({WARM_UP[0]} clicks/s for "
        f"{WARM_UP[1]} s on a tenant of its own) is not measured. Every click followed by its id "
        "through the Kafka timestamps and the inbox rows' begin/commit times (`bench/latency.py`); the budget "
        "is docs/latency-budget.md's.",
        "",
    ]
    for r in runs:
        b: Breakdown = r["breakdown"]
        ok = verdicts_against(b, limits)
        lines += [
            f"### {r['rate']} clicks/s: achieved {r['achieved_rate']:.0f}/s, {r['answered']:,} answered 302"
            + (f", other answers {r['other']}" if r["other"] else "")
            + f"; {r['messages']} SSE messages; all on the board: {'yes' if r['settled'] else '**no**'} "
            f"({r['settle_after_last_302_s'] * 1000:.0f} ms after the last 302); "
            f"{len(b.total):,} clicks followed end to end, {b.unmatched:,} not",
            "",
            f"- before: `{r['load_before']}`",
            f"- after: `{r['load_after']}`",
            "",
            "| stage | p50 ms | p99 ms | max ms | budget p99 ms | |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for s in (*STAGES, "total"):
            values = b.total if s == "total" else b.stages[s]
            lines.append(
                f"| {s} | {_ms(values, 50):.0f} | {_ms(values, 99):.0f} | {_ms(values, 100):.0f} | "
                f"{limits[s]:.0f} | {'PASS' if ok[s] else '**FAIL**'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    rates = tuple(int(a) for a in sys.argv[1:] if a.isdigit()) or RATES
    limits = budget()
    with bench_stack(
        ["content", "sharing", "gamification"],
        extra_env={"sharing": {"SHARING_REDIRECT_LAG_BUDGET_MS": "0"}},
        pg_settings={"track_commit_timestamp": "on"},
    ) as stack:
        # Not measured: the first clicks after a start (a process's first statements, its caches).
        asyncio.run(one_rate(stack, WARM_UP[0], WARM_UP[1]))
        runs = []
        for rate in rates:
            runs.append(asyncio.run(one_rate(stack, rate, SECONDS)))
            print(report(runs[-1:], limits), flush=True)
    body = report(runs, limits)
    append_results("Click -> SSE latency by stage, against the budget", body)


if __name__ == "__main__":
    main()
