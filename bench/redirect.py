"""``GET /r/{code}``: requests per second on one uvicorn worker, against a bare ASGI app that only
answers 302, with the same load generator (wrk, 64 connections) in the same run.

Traffic is realistic, not one repeated request: ~1,200 distinct user agents (real browser and crawler
strings from tests/fixtures/useragents, Zipf-distributed over a shuffled ranking), 20,000 distinct
visitors (X-Forwarded-For from loopback, which dev mode trusts), 300 links (Zipf). The sharing
process runs role ``api`` (the redirect, its journal and the sender to Kafka) on an embedded
PostgreSQL and a Tansu broker; the verdict worker is not running during the measurement (it would
compete for the same two cores, and it is not on the redirect's path).

``python -m bench.redirect`` appends the numbers to bench/RESULTS.md. ``--profile`` also samples
the sharing process with py-spy during one run and prints the top functions (install py-spy
yourself; it is not a project dependency). Needs ``wrk`` (``apt-get install -y wrk``); without it
the benchmark falls back to a much slower Python load generator and says so in the results.
"""

from __future__ import annotations

import argparse
import asyncio
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
        ip = f"198.{18 + (v >> 16) % 2}.{(v >> 8) & 255}.{v & 255}"
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
  return wrk.format("GET", r[1], {["User-Agent"] = r[2], ["X-Forwarded-For"] = r[3]})
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
                h = {"User-Agent": rng.choice(uas), "X-Forwarded-For": f"198.18.{(v >> 8) & 255}.{v & 255}"}
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.redirect")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="sample the sharing process with py-spy")
    ap.add_argument("--note", default="", help="a line to add to the results (what changed)")
    # `python -m bench` calls main() with no arguments; `python -m bench.redirect ...` passes its own.
    args = ap.parse_args(argv if argv is not None else [])

    from advocacy_common.auth.devkeys import ensure_dev_keys
    from advocacy_common.devstack.broker import TansuBroker
    from advocacy_common.devstack.net import free_port
    from advocacy_common.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
    from advocacy_common.devstack.processes import ServiceProcess
    from advocacy_common.devstack.stack import ensure_all_topics
    from advocacy_common.migrations import upgrade

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
        sharing = ServiceProcess(
            "sharing",
            sport,
            {
                "SHARING_DATABASE_URL": url,
                "SHARING_PORT": str(sport),
                "SHARING_ROLE": "api",
                "SHARING_SPOOL_DIR": str(tmp / "spool"),
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "JWT_JWKS_PATH": str(keys.jwks_path),
                "DEV_MODE": "true",
                "LOG_JSON": "true",
                "LOG_LEVEL": "WARNING",
            },
            tmp / "sharing.log",
            cwd=ROOT,
        )
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
        for p in procs:
            p.start()
        sharing.wait_ready(60)
        bare.wait_ready(30)
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
        journal = sum(f.stat().st_size for f in (tmp / "spool").rglob("*.log"))
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
                *(["", "py-spy, sharing process during the last redirect run (own time):", "", prof] if prof else []),
            ]
        )
        print(body)
        append_results("Redirect /r/{code} vs bare ASGI 302", body)
    finally:
        for p in procs:
            p.terminate()
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
