"""Small helpers shared by the dev stack: ports, bounded waits, log tails, running a coroutine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import random
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class DevStackError(RuntimeError):
    """Something in the embedded stack could not start or stop."""


class PortInUseError(DevStackError):
    def __init__(self, port: int, what: str, host: str = "127.0.0.1", hint: str = "") -> None:
        self.port = port
        self.what = what
        msg = f"port {port} on {host} is already in use; {what} cannot listen there."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; a common default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now and that no outgoing connection will take before we listen on it.

    The port the kernel picks for ``bind(0)`` comes from the ephemeral range, which is also where
    every outgoing connection (a Kafka client, a database pool) gets its local port: between
    choosing such a port and the server binding it, a client in another process can take it
    (``address already in use`` in CI). So pick at random below the ephemeral range, check it
    binds, and never hand out the same port twice in one process.
    """
    low, _ = _ephemeral_range()
    start, stop = (20000, low) if low > 21000 else (low // 2, low)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(start, stop)
        if port in _handed_out or port_in_use(port, host):
            continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine: let the kernel pick
        sock.bind((host, 0))
        picked: int = sock.getsockname()[1]
        return picked


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on (or holds) ``host:port``.

    Binds with SO_REUSEADDR like the servers we start do, so a port left in TIME_WAIT by a process
    we just killed counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def ensure_port_free(port: int, what: str, host: str = "127.0.0.1", hint: str = "") -> None:
    if port_in_use(port, host):
        raise PortInUseError(port, what, host, hint)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
    on_timeout: Callable[[], str] | None = None,
) -> None:
    """Poll ``check`` until it returns True, at most ``timeout`` seconds (a bounded retry)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = on_timeout() if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}" + (f"\n{detail}" if detail else ""))
        time.sleep(min(interval, remaining))


def tail(path: Path, lines: int = 50) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="devstack")


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None) -> T:
    """Run a coroutine to completion from synchronous code.

    The coroutine runs in a worker thread with its own event loop, so this is safe to call from
    code that already runs inside an event loop (a pytest-asyncio session, a sync fixture) without
    touching that loop.
    """
    future = _pool.submit(lambda: asyncio.run(factory()))
    return future.result(timeout)


def kill_own_children(match: Callable[[list[str]], bool]) -> list[int]:
    """SIGKILL this process's direct children whose command line satisfies ``match``.

    The safety net for an interrupt that lands between ``fork`` and our bookkeeping: such a child
    is ours (our child) but no handle tracks it. Returns the pids killed.
    """
    import psutil

    killed = []
    for child in psutil.Process().children():
        try:
            if match(child.cmdline()):
                child.kill()
                child.wait(10)
                killed.append(child.pid)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            continue
    return killed
