"""`make bench`: run every benchmark module listed here, each appending to bench/RESULTS.md."""

from __future__ import annotations

import importlib
import sys

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
    # last: docs/capacity.md's tables from the sections above (it measures nothing itself)
    "capacity",
]


def main() -> None:
    wanted = sys.argv[1:] or BENCHMARKS
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
