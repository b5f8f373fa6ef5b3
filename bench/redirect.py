"""``GET /r/{code}``: requests per second on one uvicorn worker, against a bare ASGI app that only
answers 302, with the same load generator (wrk, 64 connections) in the same run.

Traffic is realistic, not one repeated request: ~1,200 distinct user agents (real browser and crawler
strings from tests/fixtures/useragents, Zipf-distributed over a shuffled ranking), 20,000 distinct
visitors (X-Forwarded-For from loopback, which dev mode trusts), 300 links (Zipf). The sharing
process runs role ``api`` (the redirect, its journal and the sender to Kafka) on an embedded
PostgreSQL and a Tansu broker; the verdict worker is not running during the measurement (it would
compete for the same two cores, and it is not on the redirect's path).

``python -m bench.redirect`` appends the numbers to bench/RESULTS.md. ``--tracing`` also starts a
second sharing process with tracing on (``OTEL_EXPORTER_OTLP_ENDPOINT`` at a local OTLP/HTTP
receiver in its own process, bench/otlp_sink.py; the default sampling ratio) and measures it in the
same rounds, interleaved with the other two: issue 15's "tracing's cost on /r/". ``--profile`` also samples
the sharing process with py-spy during one run and prints the top functions (install py-spy
yourself; it is not a project dependency). Needs ``wrk`` (``apt-get install -y wrk``); without it
the benchmark falls back to a much slower Python load generator and says so in the results.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import append_results, have

ROOT = Path(__file__).resolve().parents[1]
UAS = ROOT / "tests" / "fixtures" / "useragents"
CONNECTIONS = 64
LINKS = 300
VISITORS = 20_000
VARIANTS = 30_000
# Every request is a person's navigation, Accept-Language included (without it the verdict worker
# would judge it a ``no_accept_language`` bot; the wrk script below sends the same value).
ACCEPT_LANGUAGE = "en-US,en;q=0.9"


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: answer every request with a 302 and nothing else."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/readyz":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 302,
            "headers": [(b"location", b"https://example.com/"), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (k**s) for k in range(1, n + 1)]


def user_agents(rng: random.Random) -> list[str]:
    browsers = [u for u in (UAS / "browsers.txt").read_text().splitlines() if u.strip()]
    bots = [u for u in (UAS / "crawlers.txt").read_text().splitlines() if u.strip()]
    bots += [u for u in (UAS / "previews.txt").read_text().splitlines() if u.strip()]
    chosen = browsers + rng.sample(bots, 360)
    rng.shuffle(chosen)  # the Zipf ranking mixes bots and browsers
    return [u for u in chosen if "]==]" not in u]


def lua_script(codes: list[str], path: Path, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    uas = user_agents(rng)
    ua_w = zipf_weights(len(uas))
    link_w = zipf_weights(len(codes), 1.0)
    picks_ua = rng.choices(range(len(uas)), weights=ua_w, k=VARIANTS)
    picks_link = rng.choices(range(len(codes)), weights=link_w, k=VARIANTS)
    lines = ["local reqs = {"]
    for i in range(VARIANTS):
        v = rng.randrange(VISITORS)
        ip = visitor_address(v)
        lines.append(f'{{"/r/{codes[picks_link[i]]}", [==[{uas[picks_ua[i]]}]==], "{ip}"}},')
    lines.append("}")
    lines.append(
        """
local i = 0
function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#reqs)
end
function request()
  i = i + 1
  local r = reqs[(i % #reqs) + 1]
  return wrk.format("GET", r[1], {["User-Agent"] = r[2], ["X-Forwarded-For"] = r[3],
                                  ["Accept-Language"] = "en-US,en;q=0.9"})
end
"""
    )
    path.write_text("\n".join(lines))
    return {"distinct_uas": len(set(picks_ua)), "uas": len(uas), "links": len(set(picks_link))}


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNIT[m.group(2)]


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    import psutil

    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            p = psutil.Process(pid or 0)
            procs = [p, *p.children(recursive=True)]
            out[name] = sum(sum(q.cpu_times()[:2]) for q in procs)
        except Exception:
            out[name] = float("nan")
    return out


def run_wrk(
    url: str, script: Path, seconds: int, threads: int = 2, watch: dict[str, int | None] | None = None
) -> dict[str, Any]:
    before = cpu_seconds(watch or {})
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res: dict[str, Any] = {"raw": out}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            res["rps"] = float(s.split()[1])
        elif s.startswith("50.000%") or s.startswith("50%"):
            res["p50_ms"] = _ms(s.split()[1])
        elif s.startswith("99.000%") or s.startswith("99%"):
            res["p99_ms"] = _ms(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            res["non_3xx"] = int(s.split(":")[1])
        elif "requests in" in s:
            res["requests"] = int(s.split()[0])
    res.setdefault("non_3xx", 0)
    after = cpu_seconds(watch or {})
    res["cpu"] = {k: (after[k] - before[k]) / seconds for k in after}
    return res


async def python_load(url: str, codes: list[str], seconds: int) -> dict[str, Any]:
    """Fallback when wrk is missing: httpx, 64 connections (far slower than wrk: the numbers are
    a floor, and the ratio is compressed because the generator saturates first)."""
    import httpx

    rng = random.Random(7)
    uas = user_agents(rng)
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5) as c:

        async def worker() -> None:
            while time.monotonic() < deadline:
                v = rng.randrange(VISITORS)
                h = {
                    "User-Agent": rng.choice(uas),
                    "X-Forwarded-For": visitor_address(v),
                    "Accept-Language": ACCEPT_LANGUAGE,
                }
                t = time.perf_counter()
                r = await c.get(f"/r/{rng.choice(codes)}", headers=h)
                lat.append(time.perf_counter() - t)
                statuses[r.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    lat.sort()
    return {
        "rps": len(lat) / seconds,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "non_3xx": sum(n for s, n in statuses.items() if not 300 <= s < 400),
        "requests": len(lat),
    }


# -- an open-loop generator (scenario 9 of tests/reliability) ---------------------------------------
# wrk is closed loop: each connection waits for its answer before the next request, so a slow server
# slows the load down and is never overloaded. Here request i is due at t0 + i / rate whatever
# happened to the others; it goes out on an idle keep-alive connection, or a new one (up to a cap:
# real visitors are new connections), or waits for one. Python on purpose (headers vary per
# request, figures per status); a few processes, each rendering its requests before the start.

_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]


# First octets of the load generators' visitors: /8s that hold none of the known datacenter ranges
# (sharing's datacenter_range; ISPs such as AT&T 12/8, China Mobile 36/8, Comcast 73/8, AFRINIC's
# 41/8 and APNIC's 61/8, and blocks no cloud announces). tests/unit/test_sharing_ranges.py checks them
# against the shipped table, and `python -m bench verdicts` reports the share of them it flags.
PEOPLE_OCTETS = (73, 12, 36, 41, 61, 11, 19, 21, 22, 25, 26, 28, 29, 30, 33, 53, 55)


def visitor_address(v: int) -> str:
    """Visitor ``v``'s address, each in a /24 of its own (1.1 million of them): people are spread over
    networks, and many visitors of one /24 clicking a new link at once are a mail scanner's burst
    (issue 21's scanner_timing), which would turn a load test's clicks into bots; people are not in
    a cloud's ranges either (datacenter_range)."""
    return f"{PEOPLE_OCTETS[(v >> 16) % len(PEOPLE_OCTETS)]}.{(v >> 8) & 255}.{v & 255}.7"


def _request(host: str, code: str, visitor: int) -> bytes:
    ip = visitor_address(visitor)
    ua = _UAS[(visitor >> 17) % len(_UAS)]  # 3 x 131,072 distinct (address, UA) visitors
    return (
        f"GET /r/{code} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nX-Forwarded-For: {ip}\r\n"
        f"Accept-Language: {ACCEPT_LANGUAGE}\r\n\r\n"
    ).encode()


class _Gen:
    """One generator process's share of the schedule: indices ``first, first + step, ...``."""

    def __init__(self, host: str, port: int, codes: Sequence[str], plan: dict[str, Any]) -> None:
        self.host, self.port, self.codes = host, port, list(codes)
        self.rate: float = plan["rate"]
        self.seconds: float = plan["seconds"]
        self.t0: float = plan["t0"]  # wall clock (time.time) of request 0, shared by the processes
        self.first: int = plan["first"]
        self.step: int = plan["step"]
        self.visitor0: int = plan["visitor0"]
        self.max_conns: int = plan["max_conns"]
        self.timeout: float = plan.get("timeout", 10.0)
        self.requests: dict[int, bytes] = {}
        self.idle: list[_Conn] = []
        self.backlog: collections.deque[int] = collections.deque()
        self.conns = 0
        self.opening = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self.latency: dict[int, list[float]] = collections.defaultdict(list)
        self.by_code: collections.Counter[int] = collections.Counter()  # 302s per code index
        self.errors: collections.Counter[str] = collections.Counter()
        self.outstanding = 0
        self.sent = 0
        self.max_backlog = 0
        self.late: list[float] = []  # due -> dispatched: the generator's own lateness (CPU-starved)
        self.waited: list[float] = []  # dispatched -> written: waiting for a free connection
        self.dispatched: dict[int, float] = {}
        self.first_on_connection: list[float] = []  # latency of each connection's first request
        self.loop = asyncio.get_event_loop()
        self.cpu0 = time.process_time()
        self.mono0: float = time.monotonic() - (time.time() - self.t0)  # t0 on the monotonic clock

    def render(self) -> None:
        """Every request of this process's share, rendered before the start (cheap during the run)."""
        n = int(self.rate * self.seconds)
        self.requests = {
            i: _request(self.host, self.codes[i % len(self.codes)], self.visitor0 + i)
            for i in range(self.first, n, self.step)
        }

    def due(self, i: int) -> float:
        return self.mono0 + i / self.rate

    async def run(self) -> dict[str, Any]:
        self.cpu0 = time.process_time()
        n = int(self.rate * self.seconds)
        i = self.first
        while i < n:
            now = time.monotonic()
            while i < n and self.due(i) <= now:
                self.dispatch(i)
                i += self.step
            if i < n:
                await asyncio.sleep(max(0.0, min(self.due(i) - time.monotonic(), 0.002)))
        deadline = time.monotonic() + self.timeout
        while (self.outstanding or self.backlog) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.errors["timeout"] += self.outstanding + len(self.backlog)
        return {
            "sent": self.sent,
            "planned": len(range(self.first, n, self.step)),
            "statuses": dict(self.statuses),
            "latency": {str(k): v for k, v in self.latency.items()},
            "by_code": dict(self.by_code),
            "errors": dict(self.errors),
            "connections": self.conns,
            "max_backlog": self.max_backlog,
            "waited": self.waited,
            "late": self.late,
            "first_on_connection": self.first_on_connection,
            "cpu": time.process_time() - self.cpu0,
        }

    def dispatch(self, i: int) -> None:
        now = time.monotonic()
        self.dispatched[i] = now
        self.late.append(now - self.due(i))
        self.outstanding += 1
        if self.idle:
            self.idle.pop().send(i)
            return
        self.backlog.append(i)
        self.max_backlog = max(self.max_backlog, len(self.backlog))
        if self.conns + self.opening < self.max_conns and self.opening < 64:
            self.opening += 1
            self.loop.create_task(self.open())

    async def open(self) -> None:
        try:
            await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
        except OSError as e:
            self.errors[type(e).__name__] += 1
            self.opening -= 1
            if self.backlog and not self.conns and not self.opening:  # nothing will ever take them
                while self.backlog:
                    self.backlog.popleft()
                    self.outstanding -= 1
                    self.errors["connect"] += 1

    def ready(self, conn: _Conn) -> None:
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    def answered(self, conn: _Conn, i: int, status: int) -> None:
        self.outstanding -= 1
        self.statuses[status] += 1
        seconds = time.monotonic() - self.dispatched.pop(i)
        self.latency[status].append(seconds)
        if conn.served == 0:
            self.first_on_connection.append(seconds)
        conn.served += 1
        if status == 302:
            self.by_code[i % len(self.codes)] += 1
        self.ready(conn)

    def lost(self, conn: _Conn, i: int | None) -> None:
        self.conns -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if i is not None:
            self.outstanding -= 1
            self.errors["closed"] += 1


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Gen) -> None:
        self.gen = gen
        self.buf = bytearray()
        self.current: int | None = None
        self.served = 0  # requests answered on this connection
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        self.gen.opening -= 1
        self.gen.conns += 1
        self.gen.ready(self)

    def send(self, i: int) -> None:
        assert self.transport is not None
        self.current = i
        self.gen.sent += 1
        self.gen.waited.append(time.monotonic() - self.gen.dispatched[i])
        self.transport.write(self.gen.requests[i])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            length = 0
            k = head.find(b"content-length:")
            if k >= 0:
                stop = head.find(b"\r\n", k)
                length = int(head[k + 15 : stop if stop >= 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            status = int(head[9:12])
            del self.buf[: end + 4 + length]
            i, self.current = self.current, None
            if i is not None:
                self.gen.answered(self, i, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self, self.current)


def generator_main(arg: str) -> None:
    """A generator process: says "ready", reads the shared start time (wall clock) from stdin, runs
    its share of the schedule, writes its figures as JSON to ``spec["out"]``."""
    spec = json.loads(arg)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    spec["t0"] = 0.0
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gen = _Gen(spec["host"], spec["port"], spec["codes"], spec)
    gen.render()
    print("ready", flush=True)
    t0 = float(sys.stdin.readline())
    gen.t0 = t0
    gen.mono0 = time.monotonic() - (time.time() - t0)

    async def go() -> dict[str, Any]:
        return await gen.run()

    Path(spec["out"]).write_text(json.dumps(loop.run_until_complete(go())))


def offer(
    url: str,
    codes: Sequence[str],
    rate: float,
    seconds: float,
    *,
    visitor0: int,
    procs: int = 2,
    max_conns: int = 4096,
) -> dict[str, Any]:
    """Offer ``rate`` requests/s for ``seconds`` (open loop, ``procs`` processes); merged figures."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    children = []
    outs = [Path(tempfile.mkstemp(prefix="s9-gen-", suffix=".json")[1]) for _ in range(procs)]
    for k in range(procs):
        spec = {
            "host": host,
            "port": int(port),
            "codes": list(codes),
            "rate": rate,
            "seconds": seconds,
            "first": k,
            "step": procs,
            "visitor0": visitor0,
            "max_conns": max(1, max_conns // procs),
            "out": str(outs[k]),
        }
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", _GENERATOR, json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    for c in children:
        assert c.stdout is not None
        said = c.stdout.readline().strip()
        if said != "ready":
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.wait(5)
            for other in children:
                other.kill()
            raise RuntimeError(f"a generator process did not start: rc={c.returncode}, said {said!r} (stderr above)")
    t0 = time.time() + 0.2
    for c in children:
        assert c.stdin is not None
        c.stdin.write(f"{t0}\n")
        c.stdin.flush()
    parts = []
    for c, out in zip(children, outs, strict=True):
        c.communicate(timeout=seconds + 60)
        parts.append(json.loads(out.read_text()))
        out.unlink()
    merged: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "planned": sum(p["planned"] for p in parts),
        "sent": sum(p["sent"] for p in parts),
        "statuses": collections.Counter(),
        "latency": collections.defaultdict(list),
        "by_code": collections.Counter(),
        "errors": collections.Counter(),
        "connections": sum(p["connections"] for p in parts),
        "max_backlog": max(p["max_backlog"] for p in parts),
        "waited": [x for p in parts for x in p["waited"]],
        "late": [x for p in parts for x in p["late"]],
        "first_on_connection": [x for p in parts for x in p["first_on_connection"]],
        "generator_cpu": round(sum(p["cpu"] for p in parts) / seconds, 2),
    }
    for p in parts:
        merged["statuses"].update({int(k): v for k, v in p["statuses"].items()})
        for k, v in p["latency"].items():
            merged["latency"][int(k)].extend(v)
        merged["by_code"].update({int(k): v for k, v in p["by_code"].items()})
        merged["errors"].update(p["errors"])
    return merged


def pct_ms(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)


def summary(res: dict[str, Any]) -> dict[str, Any]:
    lat = res["latency"]
    accepted = lat.get(302, [])
    rejected = lat.get(503, []) + lat.get(429, [])
    return {
        "offered_per_s": res["rate"],
        "statuses": dict(sorted(res["statuses"].items())),
        "errors": dict(res["errors"]),
        "accepted_per_s": round(len(accepted) / res["seconds"]),
        "p50_302_ms": pct_ms(accepted, 50),
        "p99_302_ms": pct_ms(accepted, 99),
        "p99_rejected_ms": pct_ms(rejected, 99),
        "p99_all_ms": pct_ms([x for v in lat.values() for x in v], 99),
        "connections": res["connections"],
        "client_backlog_max": res["max_backlog"],
        "p99_waited_for_connection_ms": pct_ms(res["waited"], 99),
        "p99_generator_late_ms": pct_ms(res["late"], 99),
        "p50_p99_first_on_new_connection_ms": [
            pct_ms(res["first_on_connection"], 50),
            pct_ms(res["first_on_connection"], 99),
        ],
        "generator_cpu": res["generator_cpu"],
    }


_GENERATOR = "import sys; from bench.redirect import generator_main; generator_main(sys.argv[1])"


def seed(database_url: str, tenant: str) -> list[str]:
    from sqlalchemy import text

    from advocacy_sharing.domain import new_code

    codes = [new_code() for _ in range(LINKS)]
    now = datetime.now(UTC)

    async def _do() -> None:
        from advocacy_common.db import make_engine

        eng = make_engine(database_url)
        async with eng.begin() as conn:
            for c in range(10):
                await conn.execute(
                    text(
                        "insert into content_copies (tenant_id, content_id, title, url, slug, status, updated_at) "
                        "values (:t, :c, 'Bench', :u, :s, 'published', :now)"
                    ),
                    {
                        "t": tenant,
                        "c": f"c{c}",
                        "u": f"https://example.com/post/{c}?ref=bench",
                        "s": f"post-{c}",
                        "now": now,
                    },
                )
            for i, code in enumerate(codes):
                await conn.execute(
                    text(
                        "insert into shares (id, tenant_id, code, employee_id, content_id, network, created_at, "
                        "audience_size) values (:id, :t, :code, :e, :c, 'linkedin', :now, 0)"
                    ),
                    {"id": str(uuid.uuid4()), "t": tenant, "code": code, "e": f"e{i}", "c": f"c{i % 10}", "now": now},
                )
        await eng.dispose()

    asyncio.run(_do())
    return codes


def pg_pid(pg: Any) -> int | None:
    try:
        return int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    except Exception:
        return None


def profile(pid: int, seconds: int, out: Path) -> str:
    """py-spy samples of the sharing process; the top functions by own time."""
    raw = out.with_suffix(".txt")
    subprocess.run(
        [
            shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        capture_output=True,
        check=False,
    )
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if raw.exists():
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            frames = stack.split(";")
            own[frames[-1]] += int(n)
            total += int(n)
            for label, needle in INCLUSIVE.items():
                if needle in stack:
                    inclusive[label] += int(n)
    rows = [f"| {n / max(total, 1):.1%} | `{name[:110]}` |" for name, n in own.most_common(12)]
    inc = [f"| {inclusive[k] / max(total, 1):.1%} | {k} |" for k in INCLUSIVE]
    return (
        "| inclusive | part |\n| ---: | --- |\n"
        + "\n".join(inc)
        + "\n\n| own time | function |\n| ---: | --- |\n"
        + "\n".join(rows)
    )


INCLUSIVE = {
    "the redirect (Redirector.__call__)": "Redirector.__call__",
    "journal append (in the redirect)": "ClickJournal.append",
    "sender: journal -> Kafka (ClickSender.run)": "ClickSender.run",
    "aiokafka producer internals": "aiokafka/",
    "uvicorn HTTP parsing and writing": "httptools_impl.py",
    "FastAPI/Starlette outer layers": "applications.py",
    "database (asyncpg)": "asyncpg/",
}


TRACED = "redirect, tracing on"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.redirect")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="sample the sharing process with py-spy")
    ap.add_argument("--note", default="", help="a line to add to the results (what changed)")
    ap.add_argument(
        "--tracing",
        action="store_true",
        help="also run a second sharing process with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT at a local "
        "OTLP/HTTP receiver, bench.otlp_sink; the default sampling ratio), measured in the same rounds",
    )
    # `python -m bench` calls main() with no arguments; `python -m bench.redirect ...` passes its own.
    args = ap.parse_args(argv if argv is not None else [])

    from advocacy_common.auth.devkeys import ensure_dev_keys
    from advocacy_common.migrations import upgrade
    from advocacy_common.settings import ServiceSettings
    from advocacy_dev.devstack.broker import TansuBroker
    from advocacy_dev.devstack.net import free_port
    from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
    from advocacy_dev.devstack.processes import ServiceProcess
    from advocacy_dev.devstack.stack import ensure_all_topics

    tmp = Path(tempfile.mkdtemp(prefix="bench-redirect-"))
    os.chmod(tmp, 0o755)
    pg = EmbeddedPostgres(tmp / "pg", free_port(), log_path=tmp / "pg.log", settings=FAST_UNSAFE_SETTINGS)
    broker = TansuBroker(free_port(), log_path=tmp / "tansu.log")
    procs: list[ServiceProcess] = []
    try:
        pg.start()
        broker.start()
        url = pg.create_database("bench_sharing")
        upgrade("advocacy_sharing", url)
        ensure_all_topics(broker.bootstrap, 6)
        keys = ensure_dev_keys(tmp / "keys")
        tenant = "t-bench"
        codes = seed(url, tenant)
        script = tmp / "traffic.lua"
        mix = lua_script(codes, script)

        sport, bport = free_port(), free_port()

        def sharing_process(port: int, name: str, extra: dict[str, str]) -> ServiceProcess:
            return ServiceProcess(
                "sharing",
                port,
                {
                    "SHARING_DATABASE_URL": url,
                    "SHARING_PORT": str(port),
                    "SHARING_ROLE": "api",
                    "SHARING_SPOOL_DIR": str(tmp / f"spool-{name}"),
                    "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                    "JWT_JWKS_PATH": str(keys.jwks_path),
                    "DEV_MODE": "true",
                    "LOG_JSON": "true",
                    "LOG_LEVEL": "WARNING",
                    **extra,
                },
                tmp / f"{name}.log",
                cwd=ROOT,
            )

        sharing = sharing_process(sport, "sharing", {})
        bare = ServiceProcess(
            "bare",
            bport,
            {},
            tmp / "bare.log",
            command=[
                sys.executable,
                "-c",
                "import uvicorn; uvicorn.run('bench.redirect:bare_app', host='127.0.0.1', port="
                f"{bport}, loop='uvloop', http='httptools', log_config=None, access_log=False, backlog=4096)",
            ],
            cwd=ROOT,
        )
        procs = [sharing, bare]
        traced = sink = None
        if args.tracing:
            kport = free_port()
            sink = ServiceProcess(
                "otlp-sink", kport, {}, tmp / "sink.log", command=[sys.executable, "-m", "bench.otlp_sink", str(kport)]
            )
            traced = sharing_process(free_port(), "sharing-traced", {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url})
            procs += [sink, traced]
        for p in procs:
            p.start()
        sharing.wait_ready(60)
        bare.wait_ready(30)
        if sink is not None and traced is not None:
            sink.wait_ready(30)
            traced.wait_ready(60)
    except Exception:
        for p in procs:
            p.terminate()
        broker.stop()
        pg.stop()
        raise

    try:
        use_wrk = have("wrk")
        load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        results: dict[str, list[dict[str, Any]]] = {"bare": [], "redirect": []}
        targets = {"bare": bare.url, "redirect": sharing.url}
        watch = {
            "bare": {"app": bare.pid},
            "redirect": {"app": sharing.pid, "tansu": broker.pid, "postgres": pg_pid(pg)},
        }
        if sink is not None and traced is not None:
            results[TRACED] = []
            targets[TRACED] = traced.url
            watch[TRACED] = {"app": traced.pid, "collector": sink.pid, "tansu": broker.pid, "postgres": pg_pid(pg)}
        for base in targets.values():  # warm-up: caches, connections, the JIT-less interpreter's imports
            if use_wrk:
                run_wrk(base, script, 3)
        prof = ""
        for r in range(args.rounds):
            for name, base in targets.items():
                if use_wrk:
                    if args.profile and name == "redirect" and r == args.rounds - 1 and sharing.pid:
                        with ThreadPoolExecutor(1) as pool:
                            sampled = pool.submit(profile, sharing.pid, args.seconds - 2, tmp / "prof")
                            results[name].append(run_wrk(base, script, args.seconds, watch=watch[name]))
                            prof = sampled.result(timeout=60)
                    else:
                        results[name].append(run_wrk(base, script, args.seconds, watch=watch[name]))
                else:
                    results[name].append(asyncio.run(python_load(base, codes, args.seconds)))
                last = results[name][-1]
                print(
                    f"{name:9s} round {r + 1}: {last['rps']:9.0f} req/s  p50 {last['p50_ms']:.2f} ms  "
                    f"p99 {last['p99_ms']:.2f} ms  non-3xx {last['non_3xx']}  cpu {last.get('cpu')}",
                    flush=True,
                )
        best = {k: max(v, key=lambda x: x["rps"]) for k, v in results.items()}
        ratio = best["redirect"]["rps"] / best["bare"]["rps"]
        traced_line: list[str] = []
        if sink is not None:
            import httpx

            time.sleep(6)  # the batch span processor exports every 5 s: let the last batch arrive
            stats = httpx.get(sink.url + "/stats", timeout=5).json()
            ratio_default = ServiceSettings.model_fields["tracing_sample_ratio"].default
            sent = sum(r.get("requests", 0) for r in results[TRACED])
            traced_line = [
                "",
                f"**Ratio redirect with tracing on / bare: {best[TRACED]['rps'] / best['bare']['rps']:.2f}** "
                f"(target ≥ 0.5; tracing off: {ratio:.2f}); sampling at the default ratio "
                f"({ratio_default:g}), spans exported to a local OTLP/HTTP receiver in its own process "
                f"(bench.otlp_sink): {stats['spans']:,} spans in {stats['requests']:,} export requests "
                f"({stats['bytes'] / 1e6:.1f} MB, warm-up included)"
                + (f"; {sent:,} requests measured." if sent else "."),
            ]
        journal = sum(f.stat().st_size for f in (tmp / "spool-sharing").rglob("*.log"))
        generator = (
            f"wrk 4.1, {CONNECTIONS} connections, 2 threads, {args.seconds} s per run, best of {args.rounds}"
            if use_wrk
            else f"FALLBACK: httpx in Python ({CONNECTIONS} connections) because wrk is not installed; "
            "far slower than wrk, so these numbers understate both apps"
        )
        body = "\n".join(
            [
                f"`/r/{{code}}` on one uvicorn worker (sharing role `api`: redirect + click journal + sender to "
                f"Kafka) vs a bare ASGI app that only answers 302. Load generator: {generator}.",
                f"Traffic: {mix['uas']} user agents (real browsers and crawlers, Zipf over a shuffled ranking; "
                f"{mix['distinct_uas']} distinct in the request mix), {VISITORS:,} visitors, {mix['links']} links "
                f"(Zipf), {VARIANTS:,} request variants.",
                *([f"Note: {args.note}"] if args.note else []),
                "",
                f"Machine load average at the start: {load_start}; other processes on these 2 cores compete "
                "with the run, so CPU time per request is the steadier number.",
                "",
                "| app | req/s | p50 | p99 | non-3xx | app CPU per request | CPU cores used (app, broker, database) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
                *(
                    f"| {k} | {v['rps']:,.0f} | {v['p50_ms']:.2f} ms | {v['p99_ms']:.2f} ms | {v['non_3xx']} | "
                    f"{v['cpu']['app'] / max(v['rps'], 1) * 1e6:.0f} µs | "
                    + ", ".join(f"{n} {c:.2f}" for n, c in v.get("cpu", {}).items())
                    + " |"
                    for k, v in best.items()
                ),
                "",
                f"**Ratio redirect / bare: {ratio:.2f}** (target ≥ 0.5); redirect p99 "
                f"{best['redirect']['p99_ms']:.2f} ms (target < 20 ms). Journal written: {journal / 1e6:.1f} MB.",
                *traced_line,
                *(["", "py-spy, sharing process during the last redirect run (own time):", "", prof] if prof else []),
            ]
        )
        print(body)
        title = "Redirect /r/{code} vs bare ASGI 302" + (", tracing off and on" if args.tracing else "")
        append_results(title, body)
    finally:
        for p in procs:
            p.terminate()
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
