"""Benchmark 5: resident memory of each service, idle and at the end of benchmark 3.

Every process ``make run`` starts on a throwaway embedded stack: the five services (one process
each, role ``all``: API, consumers and relay together) and the web console. RSS is read (with
children) after start-up has settled, then sampled every 0.5 s while benchmark 3's traffic runs
(``bench.leaderboard.live``: 1,000 clicks/s for 60 s through the redirect, its load shedding off
as in benchmark 3; metrics, gamification and notifications consuming what follows), read when it
stops, and read again at its end: once each service that consumed the traffic has given back what
it freed (its consumers trim the heap after catching up, ``advocacy_heap_trimmed_at_seconds``; the
tail of a burst once caught up for ``TRIM_IDLE_SECONDS``), as bench.pipeline reads a drained
consumer, or after ``TRIM_WAIT_SECONDS`` for one that does not trim. The clicks do not reach the
console: during them two people use it, in a tenant of their own (an employee's and an admin's
pages in turn, each a page every 0.5 s). Target: every process under 150 MB (idle, peak, at the
traffic's stop and at its end).
BENCH_MEMORY_SECONDS shortens the traffic (default 60; the target is judged at 60).

``python -m bench.memory --trace sharing`` (a diagnosis, not the measurement: tracing slows the
process and adds its own memory) starts that service with allocation tracing (bench/memtrace) and
prints what grew between the settled start and the end of the traffic, by source line.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

from advocacy_common.auth import mint_token
from advocacy_common.consumer import TRIM_IDLE_SECONDS
from bench.common import append_results
from bench.stackutil import BenchStack, bench_stack

SERVICES = ["content", "sharing", "metrics", "gamification", "notifications"]
PROCESSES = [*SERVICES, "console"]
TARGET_MB = 150.0
SETTLE_SECONDS = 10.0
SECONDS = int(os.environ.get("BENCH_MEMORY_SECONDS", "60"))
CONSOLE_TENANT = "bench-memory-console"
# what each of the console's two visitors reads, in turn, one page every CONSOLE_PAUSE_S
CONSOLE_VISITS = {
    ("visitor", "employee"): ["/board", "/me", "/wall", "/rewards"],
    ("manager", "admin"): ["/admin/analytics", "/admin/content", "/admin/rules"],
}
CONSOLE_PAUSE_S = 0.5
#: After the traffic stops: how long to wait for each service's heap trim (a consumer trims once
#: caught up for TRIM_IDLE_SECONDS; the full collection before the trim takes under a second).
TRIM_WAIT_SECONDS = TRIM_IDLE_SECONDS + 15.0
_TRIMMED_AT = re.compile(rb"^advocacy_heap_trimmed_at_seconds ([0-9.e+]+)$", re.MULTILINE)
_LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _sample_peaks(stack: BenchStack, stop: threading.Event, peaks: dict[str, float]) -> None:
    while not stop.is_set():
        for svc, mb in stack.rss_mb().items():
            peaks[svc] = max(peaks.get(svc, 0.0), mb)
        stop.wait(0.5)


async def _trimmed_after(stack: BenchStack, since: float) -> dict[str, float]:
    """Wait (up to TRIM_WAIT_SECONDS) until every service has trimmed its heap after ``since``; then
    when each last did, in seconds from ``since`` (negative: before it; missing: never)."""
    last: dict[str, float] = {}
    deadline = time.monotonic() + TRIM_WAIT_SECONDS
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            for svc in SERVICES:
                found = _TRIMMED_AT.search((await client.get(stack.services.url(svc) + "/metrics")).content)
                if found and float(found.group(1)) > 0:
                    last[svc] = float(found.group(1)) - since
            if all(last.get(svc, -1.0) > 0 for svc in SERVICES) or time.monotonic() > deadline:
                return last
            await asyncio.sleep(0.5)


MEMTRACE = Path(__file__).parent / "memtrace"


def _snapshot(stack: BenchStack, svc: str, into: Path, n: int) -> tracemalloc.Snapshot:
    """Ask ``svc`` (started with bench/memtrace on its path) for its ``n``-th allocation snapshot."""
    pid = stack.services.processes[svc].pid
    assert pid is not None
    os.kill(pid, signal.SIGUSR1)
    path = into / f"{pid}-{n}.snap"
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no snapshot from {svc}")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(path))


async def _console_login(client: httpx.AsyncClient, sub: str, role: str) -> None:
    """The console's dev login, as a browser does it (the login form's token, then the form)."""
    r = await client.get("/login")
    found = _LOGIN_CSRF.search(r.text)
    assert r.status_code == 200 and found, f"the console's login form: {r.status_code}"
    form = {"tenant": CONSOLE_TENANT, "sub": sub, "name": sub, "team": "team1", "role": role, "csrf": found[1]}
    r = await client.post("/login/dev", data=form)
    assert r.status_code == 303, f"dev login as {role}: {r.status_code} {r.text[:200]}"


async def _console_visitor(base: str, sub: str, role: str, paths: list[str], stop: threading.Event) -> dict[int, int]:
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await _console_login(client, sub, role)
        i = 0
        while not stop.is_set():
            r = await client.get(paths[i % len(paths)])
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            i += 1
            await asyncio.sleep(CONSOLE_PAUSE_S)
    return statuses


async def _console_use(stack: BenchStack, stop: threading.Event) -> dict[int, int]:
    """Two people on the console until ``stop``: the pages served, by status."""
    assert stack.console is not None
    admin = mint_token(stack.keys, tenant=CONSOLE_TENANT, sub="manager", roles=["admin"])
    async with httpx.AsyncClient(base_url=stack.services.url("content"), timeout=30) as content:
        # something on the board: an item the employee's pages list and the admin's list
        r = await content.post(
            "/v1/content",
            json={"title": "Memory bench", "url": "https://example.com/memory"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 201, r.text
    visits = [
        _console_visitor(stack.console.url, sub, role, paths, stop) for (sub, role), paths in CONSOLE_VISITS.items()
    ]
    statuses: dict[int, int] = {}
    for done in await asyncio.gather(*visits):
        for status, n in done.items():
            statuses[status] = statuses.get(status, 0) + n
    return statuses


def _console_thread(stack: BenchStack, stop: threading.Event, out: dict[str, Any]) -> None:
    # its own thread and event loop: the click driver's loop paces 1,000 requests a second
    try:
        out["statuses"] = asyncio.run(_console_use(stack, stop))
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"


def run(trace: str | None = None) -> dict[str, Any]:
    from bench.leaderboard import RATE, live

    tmp = tempfile.TemporaryDirectory(prefix="advocacy-memtrace-")
    into = Path(tmp.name)
    # benchmark 3's settings: sharing's load shedding off, so every click of the 60,000 goes through
    # (on a crowded machine the redirect would otherwise answer part of them 503 and hold less)
    extra: dict[str, dict[str, str]] = {"sharing": {"SHARING_REDIRECT_LAG_BUDGET_MS": "0"}}
    if trace:
        path = os.pathsep.join(p for p in (str(MEMTRACE), os.environ.get("PYTHONPATH")) if p)
        extra[trace] = {**extra.get(trace, {}), "PYTHONPATH": path, "BENCH_TRACEMALLOC_DIR": str(into)}
    with tmp, bench_stack(SERVICES, extra_env=extra, console=True) as stack:
        time.sleep(SETTLE_SECONDS)
        idle = stack.rss_mb()
        before = _snapshot(stack, trace, into, 1) if trace else None
        peaks: dict[str, float] = {}
        stop = threading.Event()
        console: dict[str, Any] = {}
        sampler = threading.Thread(target=_sample_peaks, args=(stack, stop, peaks), daemon=True)
        visitors = threading.Thread(target=_console_thread, args=(stack, stop, console), daemon=True)
        sampler.start()
        visitors.start()
        load_before = os.getloadavg()
        try:
            traffic = asyncio.run(live(stack, RATE, SECONDS))
        finally:
            stop.set()
            sampler.join()
            visitors.join()
        load_after = os.getloadavg()
        stopped, stopped_at = stack.rss_mb(), time.time()
        trimmed = asyncio.run(_trimmed_after(stack, stopped_at))
        end = stack.rss_mb()
        grew = _snapshot(stack, trace, into, 2).compare_to(before, "lineno") if trace and before else []
    return {
        "idle": idle,
        "stopped": stopped,
        "trimmed": trimmed,
        "end": end,
        "peak": peaks,
        "traffic": traffic,
        "console": console,
        "load": (load_before, load_after),
        "grew": grew,
        "trace": trace,
    }


def growth_report(r: dict[str, Any], top: int = 25) -> str:
    """What ``r["trace"]`` allocated and still held at the end, by source line, largest first."""
    grew = r["grew"]
    total = sum(d.size_diff for d in grew)
    lines = [
        f"Allocation growth in {r['trace']} (tracemalloc, start settled -> end of the traffic): "
        f"{total / 2**20:+.1f} MB in all; the largest lines:",
        "",
        "| line | grew | blocks | held at the end |",
        "| --- | ---: | ---: | ---: |",
    ]
    for d in grew[:top]:
        where = d.traceback[0]
        name = where.filename.split("site-packages/")[-1].split("/work/main/")[-1]
        lines.append(
            f"| `{name}:{where.lineno}` | {d.size_diff / 2**20:+.2f} MB | {d.count_diff:+,} | {d.size / 2**20:.2f} MB |"
        )
    return "\n".join(lines)


def report(r: dict[str, Any]) -> str:
    t, c = r["traffic"], r["console"]
    (before, after) = r["load"]
    console = f"pages served by status {c['statuses']}" if "statuses" in c else f"**failed**: {c.get('error', '?')}"
    lines = [
        f"Every process `make run` starts: {len(SERVICES)} services, one process each (role `all`), and the web "
        "console, on a throwaway embedded stack; RSS includes children.",
        f"Traffic: benchmark 3 (`bench.leaderboard.live`), {t.get('rate', '?')} clicks/s offered for "
        f"{t.get('seconds', '?')} s ({t.get('achieved_rate', float('nan')):.0f}/s achieved, responses "
        f"{t.get('statuses')}; sharing's load shedding off, as in benchmark 3). The clicks do not reach the "
        "console; during them two people used it in a tenant "
        f"of their own (an employee's /board, /me, /wall, /rewards and an admin's /admin/analytics, "
        f"/admin/content, /admin/rules, in turn, a page every {CONSOLE_PAUSE_S} s each): {console}.",
        f"Load average (1 / 5 / 15 min) at the traffic's start {before[0]:.2f} / {before[1]:.2f} / {before[2]:.2f}, "
        f"at its end {after[0]:.2f} / {after[1]:.2f} / {after[2]:.2f} ({os.cpu_count()} cores).",
        f"At its end: read once every service that trimmed its heap after the traffic had done so "
        f"(waiting up to {TRIM_WAIT_SECONDS:.0f} s); in brackets, its last trim in seconds from the traffic's stop "
        "(negative: before it; - never).",
        "",
        "| process | idle | peak during the traffic | when it stops | at its end (trimmed) | under 150 MB? |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for svc in PROCESSES:
        idle, peak, end = r["idle"].get(svc), r["peak"].get(svc), r["end"].get(svc)
        stopped = r["stopped"].get(svc)
        seen = [v for v in (idle, peak, stopped, end) if v is not None]
        verdict = ("yes" if max(seen) < TARGET_MB else "**no**") if seen else "**not running**"
        trim = r["trimmed"].get(svc)
        at = "-" if trim is None else f"{trim:.1f} s"
        lines.append(f"| {svc} | {_mb(idle)} | {_mb(peak)} | {_mb(stopped)} | {_mb(end)} ({at}) | {verdict} |")
    return "\n".join(lines)


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f} MB"


def main() -> None:
    args = sys.argv[1:]
    trace = args[args.index("--trace") + 1] if "--trace" in args else None
    if trace is not None and trace not in SERVICES:
        raise SystemExit(f"--trace: one of {SERVICES}")
    r = run(trace)
    body = report(r)
    if trace:
        body += "\n\n" + growth_report(r)
    print(body)
    title = "Memory: each service and the console, idle and at the end of benchmark 3"
    append_results(title + (f" ({trace} traced: a diagnosis)" if trace else ""), body)


if __name__ == "__main__":
    main()
