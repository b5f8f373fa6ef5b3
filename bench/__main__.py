"""`make bench`: run every benchmark module listed here, each appending to bench/RESULTS.md."""

from __future__ import annotations

import importlib
import os
import sys
from datetime import UTC, datetime

from bench.common import stop_on_signals

# Each module exposes main() -> None. Add new benchmarks here.
BENCHMARKS: list[str] = [
    "pipeline",
    "metrics_reads",
    "redirect",
    "leaderboard",
    "latency",
    "memory",
    "matcher",
    "verdicts",
    "notifications",
    "console",
    "click_cost",
    # last: docs/capacity.md's tables from the sections above, then issue 19's targets judged on this
    # run's sections, in one section of their own (neither measures anything itself)
    "capacity",
    "targets",
]


def main() -> None:
    wanted = sys.argv[1:] or BENCHMARKS
    if not sys.argv[1:]:  # the whole run: bench.targets reads only the sections appended from here on
        os.environ.setdefault("BENCH_RUN_STARTED", datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))
    # SIGTERM (a timeout, a killed `make bench`) unwinds like Ctrl-C: each benchmark's stack stops
    with stop_on_signals():
        try:
            for name in wanted:
                print(f"== bench.{name}", flush=True)
                importlib.import_module(f"bench.{name}").main()
        except KeyboardInterrupt as e:
            print(f"bench: stopped ({e or 'interrupted'}); what it started is stopped too", file=sys.stderr)
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
