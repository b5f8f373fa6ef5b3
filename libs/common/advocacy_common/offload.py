"""CPU-heavy work off the event loop: a small process pool per service process.

The loop that answers requests (sharing's ``/r/`` among them) must never run a check whose cost an
input can multiply; a thread running Python would still hold the GIL, so such work runs in another
process. :data:`POOL` is the one pool of a process:

- started on first use (a process that never checks a message never starts one), with the ``spawn``
  start method (a forked copy of a process holding threads and sockets is not safe);
- ``workers`` processes (``OFFLOAD_WORKERS``, 1 by default: a worker is a second interpreter, about
  30-60 MB, and every service process must stay under 300 MB);
- bounded: at most ``max_pending`` calls in flight (running or queued); one more waits up to
  ``wait_seconds`` for a place, then gets 429 with ``Retry-After`` (a flood queues boundedly, and
  memory held by waiting calls with it);
- a pool whose worker died (killed, out of memory) is replaced, and the call retried once;
- stopped by the service runtime's shutdown (:meth:`Offload.shutdown`); a later call starts it again.

What runs there must be a module-level function of a light module (the worker imports it), and its
arguments and result must pickle. Workers keep their own caches: the policy matcher's compiled tries
(:data:`advocacy_common.policy.MATCHERS`) live in the worker that compiled them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from advocacy_common.errors import TooManyRequests

log = logging.getLogger("advocacy.offload")

T = TypeVar("T")

OFFLOAD_PENDING = Gauge("advocacy_offload_pending", "Calls running or queued in the process pool", ["pool"])
OFFLOAD_REJECTED = Counter(
    "advocacy_offload_rejected_total", "Calls answered 429 because the process pool stayed full", ["pool"]
)
OFFLOAD_RESTARTS = Counter("advocacy_offload_restarts_total", "Process pools replaced after a worker died", ["pool"])

DEFAULT_WORKERS = 1
DEFAULT_MAX_PENDING = 64
DEFAULT_WAIT_SECONDS = 2.0
# A worker's start-up (a new interpreter importing the function's module) takes well under this.
RETRY_AFTER_SECONDS = 1


def _worker_init() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent stops the pool itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Offload:
    """A lazily started, bounded process pool (see the module's notes)."""

    def __init__(
        self,
        name: str,
        *,
        workers: int = DEFAULT_WORKERS,
        max_pending: int = DEFAULT_MAX_PENDING,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.name = name
        self._executor: ProcessPoolExecutor | None = None
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.pending = 0
        self.configure(workers=workers, max_pending=max_pending, wait_seconds=wait_seconds)

    def configure(self, *, workers: int, max_pending: int, wait_seconds: float) -> None:
        """Set the bounds (a running pool keeps its size until it is next started)."""
        if workers < 1 or max_pending < 1 or wait_seconds < 0:
            raise ValueError("workers and max_pending must be at least 1, wait_seconds not negative")
        self.workers, self.max_pending, self.wait_seconds = workers, max_pending, wait_seconds
        self._gate = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    def _semaphore(self) -> asyncio.Semaphore:
        # one per event loop: tests (and a process's restarts of its app) run several loops in turn
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Semaphore(self.max_pending))
        return self._gate[1]

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
            )
        return self._executor

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` in a worker process. 429 when the pool stays full for ``wait_seconds``."""
        gate = self._semaphore()
        try:
            await asyncio.wait_for(gate.acquire(), self.wait_seconds)
        except TimeoutError:
            OFFLOAD_REJECTED.labels(self.name).inc()
            raise TooManyRequests(
                "too many checks are running in this process; retry shortly",
                code="busy",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        self.pending += 1
        OFFLOAD_PENDING.labels(self.name).set(self.pending)
        loop = asyncio.get_running_loop()
        try:
            for attempt in (1, 2):
                pool = self._pool()
                try:
                    return await loop.run_in_executor(pool, functools.partial(fn, *args))
                except BrokenProcessPool:
                    # a worker died: replace the pool (its other calls fail the same way and retry)
                    if self._executor is pool:
                        self._executor = None
                        OFFLOAD_RESTARTS.labels(self.name).inc()
                        log.warning("offload pool lost a worker; starting a new one", extra={"pool": self.name})
                        pool.shutdown(wait=False, cancel_futures=True)
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
        finally:
            self.pending -= 1
            OFFLOAD_PENDING.labels(self.name).set(self.pending)
            gate.release()

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the workers (queued calls are cancelled); the next :meth:`run` starts new ones."""
        pool, self._executor = self._executor, None
        if pool is None:
            return
        # the executor's own list of its processes: the only handle to stop one that overstays
        processes = list((getattr(pool, "_processes", None) or {}).values())
        stopping = asyncio.ensure_future(asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True))
        try:
            await asyncio.wait_for(asyncio.shield(stopping), timeout)
        except TimeoutError:
            log.warning(
                "offload pool: a worker still busy is terminated", extra={"pool": self.name, "after_s": timeout}
            )
            for p in processes:
                p.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping, 5)


# The pool of this process: configured from the service's settings by the runtime, stopped with it.
POOL = Offload("checks")
