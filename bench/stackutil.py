"""A throwaway embedded stack for benchmarks: its own PostgreSQL, broker and service processes."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from advocacy_common.auth import DevKeys, ensure_dev_keys
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from advocacy_dev.devstack.stack import ProcessStack
from bench.common import stop_on_signals


@dataclass
class BenchStack:
    root: Path
    pg: EmbeddedPostgres
    broker: TansuBroker
    keys: DevKeys
    services: ProcessStack

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each service process (with its children), in MB."""
        out = {}
        for name, proc in self.services.processes.items():
            if not proc.pid:
                continue
            try:
                p = psutil.Process(proc.pid)
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
            out[name] = rss / 2**20
        return out


@contextlib.contextmanager
def bench_stack(
    services: Iterable[str],
    *,
    extra_env: dict[str, dict[str, str]] | None = None,
    pg_settings: dict[str, str] | None = None,
) -> Iterator[BenchStack]:
    """``pg_settings``: more PostgreSQL settings on top of the fast, unsafe ones (e.g.
    ``track_commit_timestamp`` for bench.latency's stage times)."""
    # SIGTERM/SIGINT unwind to the finally blocks below, also under `python -m bench.<name>`
    with stop_on_signals(), tempfile.TemporaryDirectory(prefix="advocacy-bench-") as tmp:
        root = Path(tmp)
        pg = EmbeddedPostgres(root / "pg", free_port(), settings={**FAST_UNSAFE_SETTINGS, **(pg_settings or {})})
        broker = TansuBroker(free_port(), log_path=root / "tansu.log")
        try:  # stopping one that did not start is a no-op: a signal during a start stops it too
            pg.start()
            broker.start()
            keys = ensure_dev_keys(root / "keys")
            stack = ProcessStack(
                server_url=pg.server_url,
                bootstrap=broker.bootstrap,
                jwks_path=keys.jwks_path,
                data_dir=root / "stack",
                ports={svc: free_port() for svc in services},
                log_json=True,
                extra_env=extra_env,
            )
            stack.prepare()
            stack.start()
            try:
                yield BenchStack(root, pg, broker, keys, stack)
            finally:
                stack.stop()
        finally:
            broker.stop()
            pg.stop()
