"""`make bench`: run every benchmark module listed here, each appending to bench/RESULTS.md."""

from __future__ import annotations

import importlib
import sys

# Each module exposes main() -> None. Add new benchmarks here.
BENCHMARKS: list[str] = [
    "pipeline",
    "metrics_reads",
    "redirect",
    "leaderboard",
    "memory",
    "matcher",
    "verdicts",
    "notifications",
    "console",
]


def main() -> None:
    wanted = sys.argv[1:] or BENCHMARKS
    for name in wanted:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
