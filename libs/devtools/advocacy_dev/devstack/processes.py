"""A service run as its own OS process (``python -m advocacy_<name> serve``), as in production."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from advocacy_common.registry import registration
from advocacy_dev.devstack.net import DevStackError, tail


class ServiceStartError(DevStackError):
    """A service process exited or never became ready; the message carries its last log lines."""


def service_command(name: str, action: str = "serve") -> list[str]:
    """The command line of a service entry point: ``serve`` or ``migrate``."""
    return [sys.executable, "-m", registration(name).package, action]


class ServiceProcess:
    """One service process, its output appended to ``log_path``.

    ``env`` is merged over ``os.environ``. ``command`` defaults to :func:`service_command`.
    The process gets its own session, so signals reach it (and any children) as a group.
    """

    def __init__(
        self,
        name: str,
        port: int,
        env: dict[str, str],
        log_path: Path,
        *,
        command: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.command = list(command) if command is not None else service_command(name)
        self.host = host
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self.starts += 1
        shown = shlex.join(self.command)
        shown = shown if len(shown) <= 160 else shown[:157] + "..."
        self._log.write(f"----- {self.name}: start #{self.starts}: {shown}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30.0, path: str = "/readyz") -> None:
        """Poll ``GET {url}{path}`` until 200, at most ``timeout`` seconds.

        Raises :class:`ServiceStartError` with the last 50 log lines when the process exits or the
        time runs out.
        """
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self.returncode
                if code is not None:
                    raise ServiceStartError(f"{self.name} exited with rc={code}:\n{self.log_tail()}")
                try:
                    r = client.get(self.url + path)
                    if r.status_code == 200:
                        return
                    last = f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as e:
                    last = repr(e)
                if time.monotonic() >= deadline:
                    raise ServiceStartError(
                        f"{self.name} not ready at {self.url}{path} after {timeout:.0f}s (last: {last}):\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.1)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a graceful shutdown: drain, flush), then SIGKILL after ``timeout``. Returns rc."""
        return self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL the process group: no shutdown code runs (a crash)."""
        return self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self, *, wait: bool = True, timeout: float = 30.0, graceful: bool = True) -> None:
        if graceful:
            self.terminate()
        else:
            self.kill()
        self.start()
        if wait:
            self.wait_ready(timeout)

    def log_tail(self, lines: int = 50) -> str:
        if self._log:
            self._log.flush()
        return tail(self.log_path, lines)

    # -- internals --------------------------------------------------------------------------------
    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            _killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Children the service may have left in its group (e.g. a reloader) go too.
        _killpg(proc.pid, signal.SIGKILL)
        self._close_log()
        return proc.returncode

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
