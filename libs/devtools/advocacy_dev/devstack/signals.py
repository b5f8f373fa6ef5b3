"""SIGINT and SIGTERM, one way for ``advocacy dev run`` and the benchmarks: turned into the unwinding
Ctrl-C does, so every ``finally`` that stops a server runs. Python's default SIGTERM ends the process
without running one, leaving the service processes, the broker and the (daemonised) PostgreSQL behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``handler(signum)`` inside the block; the handlers before come back
    after it (a nested use puts the outer one's back). Explicit for SIGINT too: a shell starts
    background jobs with SIGINT ignored, and Python then leaves it ignored. Off the main thread,
    where handlers cannot be set, nothing changes (the main thread's are in place)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handler(signum)

    prev_int = signal.signal(signal.SIGINT, on_signal)
    prev_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, prev_int)
        signal.signal(signal.SIGTERM, prev_term)


def signals_as_interrupt(
    while_stopping: Callable[[int], None] | None = None,
) -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt inside the block, so one clean-up path runs.

    ``while_stopping``: once a signal has raised, the next ones call it instead of raising again
    (the clean-up must not be cut short); without it every signal raises."""
    raised = False

    def handler(signum: int) -> None:
        nonlocal raised
        if raised and while_stopping is not None:
            while_stopping(signum)
            return
        raised = True
        raise KeyboardInterrupt(f"signal {signum}")

    return on_stop_signals(handler)
