"""Benchmark 5: resident memory of each service, idle and at the end of benchmark 3.

The four services on a throwaway embedded stack (one process each, role ``all``: API, consumers and
relay together, as ``make run`` starts them). RSS is read (with children) after start-up has
settled, then sampled every 0.5 s while benchmark 3's traffic runs (``bench.leaderboard.live``:
1,000 clicks/s for 60 s through the redirect, metrics and gamification consuming), and read again
at its end. Target: every service under 150 MB.
"""

from __future__ import annotations

import asyncio
import threading
import time
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


def run() -> dict[str, Any]:
    from bench.leaderboard import RATE, live

    with bench_stack(SERVICES) as stack:
        time.sleep(SETTLE_SECONDS)
        idle = stack.rss_mb()
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
    return {"idle": idle, "end": end, "peak": peaks, "traffic": traffic}


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
    body = report(run())
    print(body)
    append_results("Memory: each service idle and at the end of benchmark 3", body)


if __name__ == "__main__":
    main()
