"""Benchmark 5: resident memory of each service, idle and at the end of benchmark 3.

The four services on a throwaway embedded stack (one process each, role ``all``: API, consumers and
relay together, as ``make run`` starts them). RSS is read (with children) after start-up has
settled, then sampled every 0.5 s while benchmark 3's traffic runs (``bench.leaderboard.live``:
1,000 clicks/s for 60 s through the redirect, metrics and gamification consuming), and read again
at its end. Target: every service under 150 MB.

``python -m bench.memory --trace sharing`` (a diagnosis, not the measurement: tracing slows the
process and adds its own memory) starts that service with allocation tracing (bench/memtrace) and
prints what grew between the settled start and the end of the traffic, by source line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import append_results
from bench.stackutil import BenchStack, bench_stack

SERVICES = ["content", "sharing", "metrics", "gamification"]
TARGET_MB = 150.0
SETTLE_SECONDS = 10.0


def _sample_peaks(stack: BenchStack, stop: threading.Event, peaks: dict[str, float]) -> None:
    while not stop.is_set():
        for svc, mb in stack.rss_mb().items():
            peaks[svc] = max(peaks.get(svc, 0.0), mb)
        stop.wait(0.5)


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


def run(trace: str | None = None) -> dict[str, Any]:
    from bench.leaderboard import RATE, live

    tmp = tempfile.TemporaryDirectory(prefix="advocacy-memtrace-")
    into = Path(tmp.name)
    extra = {}
    if trace:
        path = os.pathsep.join(p for p in (str(MEMTRACE), os.environ.get("PYTHONPATH")) if p)
        extra[trace] = {"PYTHONPATH": path, "BENCH_TRACEMALLOC_DIR": str(into)}
    with tmp, bench_stack(SERVICES, extra_env=extra) as stack:
        time.sleep(SETTLE_SECONDS)
        idle = stack.rss_mb()
        before = _snapshot(stack, trace, into, 1) if trace else None
        peaks: dict[str, float] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_peaks, args=(stack, stop, peaks), daemon=True)
        sampler.start()
        try:
            traffic = asyncio.run(live(stack, RATE, 60))
        finally:
            stop.set()
            sampler.join()
        end = stack.rss_mb()
        grew = _snapshot(stack, trace, into, 2).compare_to(before, "lineno") if trace and before else []
    return {"idle": idle, "end": end, "peak": peaks, "traffic": traffic, "grew": grew, "trace": trace}


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
    t = r["traffic"]
    lines = [
        "Four services, one process each (role `all`), on a throwaway embedded stack; RSS includes children.",
        f"Traffic: benchmark 3 (`bench.leaderboard.live`), {t.get('rate', '?')} clicks/s offered for "
        f"{t.get('seconds', '?')} s.",
        "",
        "| service | idle | peak during the traffic | at its end | under 150 MB? |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for svc in SERVICES:
        idle, peak, end = r["idle"].get(svc), r["peak"].get(svc), r["end"].get(svc)
        worst = max(v for v in (idle, peak, end) if v is not None)
        lines.append(
            f"| {svc} | {idle:.0f} MB | {peak:.0f} MB | {end:.0f} MB | {'yes' if worst < TARGET_MB else '**no**'} |"
        )
    return "\n".join(lines)


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
    title = "Memory: each service idle and at the end of benchmark 3"
    append_results(title + (f" ({trace} traced: a diagnosis)" if trace else ""), body)


if __name__ == "__main__":
    main()
