"""A benchmark killed with SIGTERM (a CI timeout, `kill` of a stuck `make bench`) stops what it
started: the embedded PostgreSQL (a daemon, not our child), the broker and the service processes.
Python's default SIGTERM ends the process without running a single ``finally``; the benchmarks'
entry point (bench/__main__.py) and their stack turn it into the unwinding Ctrl-C does
(bench.common.stop_on_signals).

The bench here is the tiny stack most benchmarks build on (bench.stackutil.bench_stack with no
services: PostgreSQL and the broker; it installs the same handling, for `python -m bench.<name>`),
in a process of its own, signalled once it is up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
# A benchmark that only holds the stack until it is signalled.
_BENCH = """
import json, sys, time
from bench.stackutil import bench_stack

try:
    with bench_stack([]) as s:
        print(json.dumps({"pg": s.pg._pid, "broker": s.broker.pid, "root": str(s.root)}), flush=True)
        while True:
            time.sleep(0.1)
except KeyboardInterrupt:
    raise SystemExit(130)
"""
# Bounds under load, not speed claims: initdb and the broker's start; the stack's clean stop.
UP_TIMEOUT = 120
DOWN_TIMEOUT = 90


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_a_bench_sent_sigterm_leaves_no_process_or_directory_behind() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _BENCH],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    started: set[int] = set()
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + UP_TIMEOUT
        line = ""
        while not line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert line, f"the stack did not come up: {proc.stderr.read() if proc.stderr else ''}"
        up = json.loads(line)
        started |= {c.pid for c in psutil.Process(proc.pid).children(recursive=True)} | {up["pg"], up["broker"]}
        assert all(alive(pid) for pid in (up["pg"], up["broker"]))

        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DOWN_TIMEOUT)
        assert proc.returncode == 130, err[-2000:]
        left = sorted(pid for pid in started if alive(pid))
        assert left == [], f"left running: {[psutil.Process(p).cmdline()[:3] for p in left]}"
        assert not Path(up["root"]).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in started:  # a failed run must not leave its stack to the next test either
            if alive(pid):
                psutil.Process(pid).kill()
