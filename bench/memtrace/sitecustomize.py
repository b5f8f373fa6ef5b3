"""Loaded by ``site`` at start-up in a service process that ``bench.memory --trace`` starts with this
directory on PYTHONPATH: traces allocations (tracemalloc, one frame) and writes a snapshot to
``$BENCH_TRACEMALLOC_DIR/<pid>-<n>.snap`` on each SIGUSR1. Not a project module: nothing imports it."""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

_DIR = os.environ.get("BENCH_TRACEMALLOC_DIR")

if _DIR:
    tracemalloc.start(1)
    _count = [0]
    _into = Path(_DIR)

    def _dump(_signum: int, _frame: FrameType | None) -> None:
        _count[0] += 1
        path = _into / f"{os.getpid()}-{_count[0]}.snap"
        tracemalloc.take_snapshot().dump(str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)

    signal.signal(signal.SIGUSR1, _dump)
