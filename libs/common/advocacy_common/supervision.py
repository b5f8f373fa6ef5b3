"""When a background task that died should make the process unhealthy (pure; the clock is passed in).

A service's background tasks (consumers, the outbox relay, schedulers, the topic watch) are
restarted when they raise, with a growing pause (:func:`backoff`). One crash is a hiccup: the task
comes back. A task that keeps dying is a process that cannot do its job; ``/healthz`` then fails,
so the orchestrator replaces the pod (before this, ``/readyz`` said 503 forever and liveness stayed
200: the pod was never restarted).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Pauses before a restart: 0.5 s doubling to 30 s. A task that ran longer than RESET_AFTER before it
# died starts again from the shortest pause (it was healthy for a while; this is a new incident).
FIRST_PAUSE = 0.5
MAX_PAUSE = 30.0
RESET_AFTER = 60.0


def backoff(previous: float | None, ran_for: float) -> float:
    if previous is None or ran_for >= RESET_AFTER:
        return FIRST_PAUSE
    return min(previous * 2, MAX_PAUSE)


@dataclass
class CrashWindow:
    """``limit`` deaths within ``seconds`` trip it (and it stays tripped: the pod is to be replaced)."""

    limit: int = 3
    seconds: float = 300.0
    deaths: deque[float] = field(default_factory=deque)
    tripped: bool = False

    def died(self, now: float) -> bool:
        """Record a death at ``now``; True once the window holds ``limit`` of them."""
        self.deaths.append(now)
        while self.deaths and now - self.deaths[0] > self.seconds:
            self.deaths.popleft()
        if len(self.deaths) >= self.limit:
            self.tripped = True
        return self.tripped
