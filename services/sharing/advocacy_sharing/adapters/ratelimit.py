"""The redirect's per-visitor, per-link rate limit (more than N requests a minute: 429).

A sliding-window estimate from two fixed windows (the previous minute's count weighted by how much
of it still overlaps the last 60 s, plus this minute's count): O(1) time and three numbers per
(link, visitor), accurate to within a request or two at the boundary. Per process on purpose: the
429 has to be answered at the edge, and the verdict travels with the click.
"""

from __future__ import annotations


class RateLimiter:
    def __init__(self, limit: int = 30, window: float = 60.0, max_keys: int = 500_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        # key -> (window index, count in that window, count in the window before). Tuples of ints,
        # not lists: the garbage collector stops tracking them, so a few hundred thousand keys do not
        # turn every full collection into a pause on the redirect's path.
        self._counts: dict[str, tuple[int, int, int]] = {}
        self._swept = 0

    def hit(self, key: str, now: float) -> bool:
        """Record one request; True when it is over the limit."""
        idx = int(now // self.window)
        c = self._counts.get(key)
        if c is None:
            if len(self._counts) >= self.max_keys or idx > self._swept:
                self._sweep(idx)
            self._counts[key] = (idx, 1, 0)
            return self.limit < 1
        if c[0] == idx:
            cur, prev = c[1] + 1, c[2]
        else:
            cur, prev = 1, (c[1] if c[0] == idx - 1 else 0)
        self._counts[key] = (idx, cur, prev)
        overlap = 1.0 - (now - idx * self.window) / self.window
        return prev * overlap + cur > self.limit

    def _sweep(self, idx: int) -> None:
        """Forget keys idle for two windows (run at most once per window, or when full)."""
        self._swept = idx
        stale = [k for k, c in self._counts.items() if c[0] < idx - 1]
        for k in stale:
            del self._counts[k]
        if len(self._counts) >= self.max_keys:  # still full: drop the oldest half
            for k in list(self._counts)[: self.max_keys // 2]:
                del self._counts[k]

    def __len__(self) -> int:
        return len(self._counts)
