"""Servers the tests start themselves, stopped even when a run is interrupted."""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from advocacy_dev.devstack.net import free_port

if TYPE_CHECKING:
    from advocacy_dev.devstack.broker import TansuBroker


def stop_at_exit(stop: Callable[[], None]) -> Callable[[], None]:
    """Also stop on interpreter exit (an interrupted run), in case the fixture teardown never ran."""
    atexit.register(stop)
    return stop


@contextmanager
def own_tansu(root: Path) -> Iterator[TansuBroker]:
    """A Tansu broker on a free port, logging under ``root``; stopped on exit (or at interpreter exit
    if the run is interrupted). For stacks that must not share the session broker's groups."""
    from advocacy_dev.devstack.broker import TansuBroker

    tansu = TansuBroker(free_port(), log_path=root / "tansu.log")
    stop = stop_at_exit(tansu.kill)
    try:
        tansu.start()
        yield tansu
    finally:
        tansu.stop()
        atexit.unregister(stop)
