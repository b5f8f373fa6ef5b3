"""Click -> live board: the 302 -> SSE latency, stage by stage, against docs/latency-budget.md.

Content, sharing and gamification as processes on a throwaway embedded stack, sharing in the
production topology (BENCH_LATENCY_SHARING=split, the default: an ``api`` process answering the
redirects and a ``worker`` process judging the clicks; ``all``: one process doing both); 20
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
award_wait      -> gamification's transaction began (the award's ledger row: ``created_at``)
award_batch     -> that transaction committed (the NOTIFY is delivered then)
board           -> the first SSE message showing the click (the feed's coalescing interval, the
                board read, the write)
==============  =================================================================================

The SSE time of a click: for each sharer, the n-th 302 is matched with the first message showing
at least n clicks for them (the board counts, it does not name clicks). The stages of one click add
up to its total. Each stage's p99 is checked against its budget in docs/latency-budget.md (the
table there is parsed, so the doc and the check cannot drift apart): PASS or FAIL per stage.

After the last rate, the verdict worker's history read (``_HISTORY`` in sharing's
features/clicks.py) is run under EXPLAIN (ANALYZE, BUFFERS) for the pairs of the last 1,000 clicks,
next to the cross product it replaced: the blocks each reads, with every click of the run in the
table.

``python -m bench latency``; ``python -m bench.latency 1000`` runs one rate.
BENCH_LATENCY_SECONDS sets the seconds per rate (default 60).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from advocacy_common import topics
from advocacy_common.auth import mint_token
from advocacy_common.db import make_engine
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.processes import ServiceProcess
from advocacy_sharing.features.clicks import _HISTORY
from bench.common import append_results, board_times, percentile
from bench.leaderboard import ACCEPT_LANGUAGE, CHROME, CONNECTIONS, SHARERS
from bench.redirect import visitor_address
from bench.stackutil import BenchStack, bench_stack

RATES = (250, 500, 1000)
SECONDS = int(os.environ.get("BENCH_LATENCY_SECONDS", "60"))
WARM_UP = (100, 10)  # clicks/s, seconds: before the measured rates, on a tenant of its own
BUDGET_DOC = Path(__file__).resolve().parents[1] / "docs" / "latency-budget.md"
STAGES = ("send", "verdict_wait", "verdict_batch", "relay", "award_wait", "award_batch", "board")
SHARE_POINTS = 10  # a share is worth 10 points before any click (the default rules)
# split: sharing as production runs it, an `api` process (redirects, the click sender) and a
# `worker` process (the verdict consumer, the outbox relay); all: one process with both roles.
SHARING = os.environ.get("BENCH_LATENCY_SHARING", "split")
if SHARING not in ("split", "all"):
    raise SystemExit(f"BENCH_LATENCY_SHARING={SHARING!r}: split or all")


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
    return await _row_times(
        stack,
        svc,
        "SELECT event_id, extract(epoch FROM processed_at)::float8, "
        "extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM inbox WHERE event_type = $1",
        event_type,
    )


async def award_times(stack: BenchStack, tenant: str) -> dict[str, tuple[float, float]]:
    """``share.clicked`` event id -> (gamification's transaction began, it committed), from the
    ledger row of its award (``created_at`` defaults to the transaction's ``now()``): a counted
    click leaves no inbox row (docs/adr/0022-gamification-clicks-skip-the-inbox.md)."""
    return await _row_times(
        stack,
        "gamification",
        "SELECT event_id, extract(epoch FROM created_at)::float8, "
        "extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM ledger "
        "WHERE tenant_id = $1 AND action = 'click'",
        tenant,
    )


async def _row_times(stack: BenchStack, svc: str, query: str, arg: str) -> dict[str, tuple[float, float]]:
    conn = await asyncpg.connect(stack.pg.database_url(f"advocacy_{svc}", driver=None))
    try:
        rows = await conn.fetch(query, arg)
    finally:
        await conn.close()
    return {r[0]: (r[1], r[2] if r[2] is not None else r[1]) for r in rows}


def sse_times(clicks: Clicks, messages: Sequence[tuple[float, dict[str, int]]]) -> dict[str, float]:
    """click id -> wall time of the first message that shows it (``bench.common.board_times``)."""
    by_emp: dict[str, list[tuple[float, str]]] = {}
    for cid, (emp, t) in clicks.answered.items():
        by_emp.setdefault(emp, []).append((t, cid))
    return dict(board_times(by_emp, messages, SHARE_POINTS))


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
    awards = await award_times(stack, tenant)
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


# -- the verdict worker's history read ----------------------------------------------------------------------
# The form _HISTORY had before 2026-12-04, kept to compare the two on the same table.
_CROSS_PRODUCT = sa.text(
    "SELECT code, visitor, id, received_at FROM clicks "
    "WHERE code = ANY(CAST(:codes AS text[])) AND visitor = ANY(CAST(:visitors AS text[])) "
    "AND verdict = :counted AND received_at >= :lo AND received_at <= :hi"
)


async def explain_history(stack: BenchStack) -> dict[str, Any]:
    """The history read for the (code, visitor) pairs of the table's last 1,000 clicks (a batch's
    worth, as the worker asks for them: ±24 h around them), under EXPLAIN (ANALYZE, BUFFERS), in
    today's form and as the cross product; each run twice, the second (warm) one kept."""
    engine = make_engine(stack.pg.database_url("advocacy_sharing"), pool_size=1)
    out: dict[str, Any] = {}
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(sa.text("SELECT count(*) FROM clicks"))
            rows = (
                await conn.execute(
                    sa.text("SELECT code, visitor, received_at FROM clicks ORDER BY received_at DESC LIMIT 1000")
                )
            ).all()
            pairs = sorted({(r[0], r[1]) for r in rows})
            lo = min(r[2] for r in rows) - timedelta(hours=24)
            hi = max(r[2] for r in rows) + timedelta(hours=24)
            forms = {
                "pairs": (_HISTORY, {"codes": [c for c, _ in pairs], "visitors": [v for _, v in pairs]}),
                "cross product": (
                    _CROSS_PRODUCT,
                    {"codes": sorted({c for c, _ in pairs}), "visitors": sorted({v for _, v in pairs})},
                ),
            }
            out["n_clicks"] = int(total or 0)
            out["n_pairs"] = len(pairs)
            out["n_codes"] = len({c for c, _ in pairs})
            for name, (stmt, params) in forms.items():
                bound = {**params, "counted": "counted", "lo": lo, "hi": hi}
                explain = sa.text("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + stmt.text)
                for _ in range(2):
                    plan = (await conn.execute(explain, bound)).scalar_one()
                top = (plan if isinstance(plan, list) else orjson.loads(plan))[0]
                node = top["Plan"]
                text = "\n".join(
                    r[0][:200]
                    for r in (await conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + stmt.text), bound)).all()
                )
                print(f"-- _HISTORY as {name}:\n{text}", flush=True)
                out[name] = {
                    "ms": float(top["Execution Time"]),
                    "blocks": int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0)),
                    "rows": int(node.get("Actual Rows", 0)),
                    "plan": node["Node Type"],
                }
    finally:
        await engine.dispose()
    return out


def explain_report(e: dict[str, Any]) -> str:
    lines = [
        f"### The verdict worker's history read, {e['n_clicks']:,} clicks in the table",
        "",
        f"EXPLAIN (ANALYZE, BUFFERS) for the {e['n_pairs']:,} (code, visitor) pairs of the last 1,000 clicks "
        f"({e['n_codes']} codes), warm, ±24 h:",
        "",
        "| form | top node | rows | shared blocks | ms |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name in ("pairs", "cross product"):
        f = e[name]
        lines.append(f"| {name} | {f['plan']} | {f['rows']:,} | {f['blocks']:,} | {f['ms']:.1f} |")
    return "\n".join(lines) + "\n"


# -- sharing's worker as a process of its own ------------------------------------------------------------
@contextlib.contextmanager
def sharing_worker(stack: BenchStack) -> Iterator[None]:
    """In the split topology, sharing's ``worker`` process next to the stack's ``api`` one: the same
    environment, its own port (every role serves /readyz) and log."""
    if SHARING != "split":
        yield
        return
    port = free_port()
    env = {**stack.services.envs["sharing"], "SHARING_ROLE": "worker", "SHARING_PORT": str(port)}
    proc = ServiceProcess("sharing", port, env, stack.services.data.logs / "sharing-worker.log")
    proc.start()
    try:
        proc.wait_ready(60)
        yield
    finally:
        proc.terminate()


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
        "sharers, distinct visitors, one SSE stream of the top 50 on gamification. Content and gamification "
        "(one process each, role `all`) and sharing ("
        + (
            "two processes: role `api` for the redirects, role `worker` for the verdicts"
            if SHARING == "split"
            else "one process, role `all`"
        )
        + f") on the same {os.cpu_count()} cores as PostgreSQL, Tansu and "
        "the load generator (a machine shared with other engineers: `uptime` before and after each rate). "
        f"Sharing's load shedding off (`SHARING_REDIRECT_LAG_BUDGET_MS=0`). A warm-up ({WARM_UP[0]} clicks/s for "
        f"{WARM_UP[1]} s on a tenant of its own) is not measured. Every click followed by its id "
        "through the Kafka timestamps and the begin/commit times of the inbox and ledger rows "
        "(`bench/latency.py`); the budget is docs/latency-budget.md's.",
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
    sharing_env = {"SHARING_REDIRECT_LAG_BUDGET_MS": "0"}
    if SHARING == "split":
        sharing_env["SHARING_ROLE"] = "api"
    with (
        bench_stack(
            ["content", "sharing", "gamification"],
            extra_env={"sharing": sharing_env},
            pg_settings={"track_commit_timestamp": "on"},
        ) as stack,
        sharing_worker(stack),
    ):
        # Not measured: the first clicks after a start (a process's first statements, its caches).
        asyncio.run(one_rate(stack, WARM_UP[0], WARM_UP[1]))
        runs = []
        for rate in rates:
            runs.append(asyncio.run(one_rate(stack, rate, SECONDS)))
            print(report(runs[-1:], limits), flush=True)
        explained = asyncio.run(explain_history(stack))
    body = report(runs, limits) + "\n" + explain_report(explained)
    print(explain_report(explained), flush=True)
    append_results("Click -> SSE latency by stage, against the budget", body)


if __name__ == "__main__":
    main()
