"""Admission control for ``/r/{code}``: under overload, answer the excess 503 at once.

The redirect itself never waits (no database, no broker): a request is handled start to finish in
one step of the event loop. So the queue that grows under overload is not inside the handler but in
front of it: requests read from the sockets wait for the loop to reach them, and the kernel holds
what the loop has not read yet. How long a ready callback waits is the event loop's lag, measured
here by a ticker that sleeps ``tick`` seconds and notes how late it woke. A lag that stays above the
budget means the process is being asked for more than it can serve within it.

The controller keeps an *admit fraction*. Every tick it looks at how late the tick woke: three late
ticks in a row (each one a loop iteration longer than the budget; one or two are a garbage
collection or a moment without CPU on a crowded machine, not a queue) while at least ``min_rate`` redirects a second
arrive (a process made late by its neighbours on a crowded machine, at a trickle of traffic, gains
nothing by refusing that trickle) cut the fraction multiplicatively, by the ratio of the budget to
the lag (at most x0.25 a tick); ticks back under half the budget let it grow again, by about +30 % a
second. The redirect admits that fraction of requests, spread evenly (a credit counter, no random
numbers); the others get a prepared 503 with ``Retry-After`` before anything else happens: no link
lookup, no rate-limit entry, no journal write. A 302 therefore still means "journaled". (A first
version judged the smallest lag of 100 ms windows: with a thousand connections in flight some tick
of each window still came early, the windows looked calm while the iterations grew to half a second,
and it shed 97 of 24,000 requests at 5x.)

A rejected request still costs uvicorn's HTTP parsing and one write (about half of a served one,
measured on the bench: the bare ASGI 302 costs 46 µs of CPU, the redirect 93 µs), so shedding
stretches a process's capacity by roughly 2x, not without limit: past that, the kernel's queues
grow again and only more replicas help.

Separately, link-cache misses (the only path that awaits, one database read) are bounded: with more
than ``max_loads`` of them in flight a new miss is answered 503 instead of queueing for the pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Admission:
    def __init__(
        self,
        *,
        budget: float = 0.05,
        interval: float = 0.1,  # over which the request rate is measured
        tick: float = 0.005,
        min_admit: float = 0.02,
        min_rate: float = 200.0,
        max_loads: int = 64,
        clock: Callable[[], float] = time.monotonic,
        count: Callable[[], int] = lambda: 0,
    ) -> None:
        self.budget = budget  # seconds of loop lag tolerated; 0 disables shedding
        self.interval = interval
        self.tick = tick
        self.min_admit = min_admit
        self.min_rate = min_rate
        self.max_loads = max_loads
        self.clock = clock
        self.count = count  # requests on /r/ so far (the redirect's answer counts)
        self.admit = 1.0  # fraction of requests admitted; the redirect reads it on every request
        self._credit = 0.0
        self.lag = 0.0  # lag of the last tick, seconds
        self.max_lag = 0.0  # largest single lag seen since start (a figure for /metrics)
        self.loads = 0  # link-cache misses in flight
        self.shed = 0  # requests answered 503 by the admit fraction
        self.shed_loads = 0  # requests answered 503 because too many misses were in flight
        self._over = 0  # consecutive ticks over the budget

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def allow(self) -> bool:
        """One request: admitted? Call only when ``admit < 1`` (the redirect checks that inline)."""
        c = self._credit + self.admit
        if c >= 1.0:
            self._credit = c - 1.0
            return True
        self._credit = c
        self.shed += 1
        return False

    def observe(self, lag: float, rate: float, dt: float) -> None:
        """One tick: its lag, the /r/ requests per second lately, seconds since the previous tick."""
        self.lag = lag
        self.max_lag = max(self.max_lag, lag)
        if lag > self.budget and rate >= self.min_rate:
            self._over += 1
            if self._over >= 3:  # three iterations in a row over the budget: a queue, not a pause
                self.admit = max(self.min_admit, self.admit * max(0.25, min(0.8, self.budget / lag)))
            return
        self._over = 0
        if lag < self.budget / 2 and self.admit < 1.0:
            self.admit = min(1.0, self.admit * (1.0 + 0.3 * dt) + 0.3 * dt)
            if self.admit >= 1.0:
                self._credit = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """The ticker: measures the loop's lag every tick and adjusts the admit fraction."""
        if not self.enabled:
            return
        tick = self.tick
        window_start = self.clock()
        window_count = self.count()
        rate = 0.0
        while not stop.is_set():
            before = self.clock()
            await asyncio.sleep(tick)
            now = self.clock()
            if now - window_start >= self.interval:  # the request rate, over ~interval
                n = self.count()
                rate = (n - window_count) / (now - window_start)
                window_start, window_count = now, n
            self.observe(max(0.0, now - before - tick), rate, now - before)
