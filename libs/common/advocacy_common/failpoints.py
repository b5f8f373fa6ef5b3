"""Fail points: a process kills itself at a named moment, for fault-injection tests.

Some crash windows are a few milliseconds wide (a consumer between its database commit and its
offset commit): a test that SIGKILLs from outside lands in them by luck. A fail point lands there
every time. They are armed only through the environment, read once at import::

    ADVOCACY_FAILPOINTS="consumer.after_db_commit=nth:3"     # SIGKILL at the 3rd time it is reached
    ADVOCACY_FAILPOINTS="consumer.after_db_commit=p:0.05"    # SIGKILL with probability 0.05 each time

Several points are separated by commas. Unset (production), :func:`hit` is one dictionary lookup.
The process writes ``failpoint <name>: SIGKILL (hit n)`` to stderr before it dies, so a test can
tell a fail-point death from any other.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from dataclasses import dataclass

ENV = "ADVOCACY_FAILPOINTS"


@dataclass(slots=True)
class FailPoint:
    name: str
    nth: int | None = None
    probability: float = 0.0
    hits: int = 0

    def fires(self) -> bool:
        self.hits += 1
        if self.nth is not None:
            return self.hits == self.nth
        return random.random() < self.probability


def parse(spec: str) -> dict[str, FailPoint]:
    """``name=nth:N`` or ``name=p:F`` items separated by commas; a malformed item is an error (a
    typo must not silently disarm a test)."""
    points: dict[str, FailPoint] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, how = item.partition("=")
        kind, sep2, value = how.partition(":")
        if not (sep and sep2 and name):
            raise ValueError(f"{ENV}: expected name=nth:N or name=p:F, got {item!r}")
        if kind == "nth" and value.isdigit() and int(value) >= 1:
            points[name] = FailPoint(name, nth=int(value))
        elif kind == "p" and 0.0 <= float(value) <= 1.0:
            points[name] = FailPoint(name, probability=float(value))
        else:
            raise ValueError(f"{ENV}: bad trigger {how!r} for {name!r}")
    return points


_POINTS = parse(os.environ.get(ENV, ""))


def hit(name: str) -> None:
    """Reached the moment ``name``: die here if the environment armed it."""
    point = _POINTS.get(name)
    if point is None or not point.fires():
        return
    sys.stderr.write(f"failpoint {name}: SIGKILL (hit {point.hits})\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
