"""A throwaway embedded stack for benchmarks: its own PostgreSQL, broker and service processes."""

from __future__ import annotations

import contextlib
import secrets
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from advocacy_common.auth import DevKeys, ensure_dev_keys
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from advocacy_dev.devstack.processes import ServiceProcess
from advocacy_dev.devstack.stack import ProcessStack, console_env
from bench.common import stop_on_signals


@dataclass
class BenchStack:
    root: Path
    pg: EmbeddedPostgres
    broker: TansuBroker
    keys: DevKeys
    services: ProcessStack
    console: ServiceProcess | None = None

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each service process and the console's (with their children), in MB."""
        out = {}
        processes = dict(self.services.processes)
        if self.console is not None:
            processes["console"] = self.console
        for name, proc in processes.items():
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
    console: bool = False,
) -> Iterator[BenchStack]:
    """``pg_settings``: more PostgreSQL settings on top of the fast, unsafe ones (e.g.
    ``track_commit_timestamp`` for bench.latency's stage times). ``console``: the web console runs
    beside the services as ``make run`` starts it (its own process, dev login with the stack's key,
    sessions in its own database), calling their APIs."""
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
            web = None
            if console:
                env = console_env(
                    stack.ports,
                    keys.jwks_path.parent,
                    database_url=pg.create_database("advocacy_console"),
                    secret_key=secrets.token_urlsafe(32),
                    port=free_port(),
                )
                command = [sys.executable, "-m", "advocacy_console", "serve"]
                web = ServiceProcess("console", int(env["CONSOLE_PORT"]), env, root / "console.log", command=command)
            try:
                stack.start()
                if web is not None:
                    web.start()
                    web.wait_ready(60)
                yield BenchStack(root, pg, broker, keys, stack, web)
            finally:
                if web is not None:
                    web.terminate()
                stack.stop()
        finally:
            broker.stop()
            pg.stop()
