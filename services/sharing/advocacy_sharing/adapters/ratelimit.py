"""The redirect's per-visitor, per-link rate limit (more than N requests a minute: 429).

A sliding-window estimate from two fixed windows (the previous minute's count weighted by how much
of it still overlaps the last 60 s, plus this minute's count): O(1) time and three numbers per
(link, visitor), accurate to within a request or two at the boundary. Per process on purpose: the
429 has to be answered at the edge, and the verdict travels with the click.

Every visitor of the last two minutes has an entry, so the table is what grows with traffic (1,000
new visitors a second hold 120,000 entries). An entry is two machine-sized ints: the key's
``hash()`` (SipHash with a per-process secret, so a visitor cannot pick a key that collides with
another's; two of 500,000 keys share 64 bits with odds of ~1e-8) and the three numbers packed into
one. Measured with tracemalloc (issue 19, ADR 0020): ~110 bytes an entry, where a str key and a tuple
of three ints held ~210 (60,000 visitors: 12.5 MB before, 6.4 MB now). Neither is tracked by the garbage
collector, so a few hundred thousand entries do not turn every full collection into a pause on the
redirect's path.
"""

from __future__ import annotations

_COUNT_BITS = 16
_COUNT_MAX = (1 << _COUNT_BITS) - 1  # counts saturate here (far above any limit)
_MASK = _COUNT_MAX


def _pack(idx: int, cur: int, prev: int) -> int:
    return (idx << (2 * _COUNT_BITS)) | (min(cur, _COUNT_MAX) << _COUNT_BITS) | min(prev, _COUNT_MAX)


def _unpack(v: int) -> tuple[int, int, int]:
    return v >> (2 * _COUNT_BITS), (v >> _COUNT_BITS) & _MASK, v & _MASK


class RateLimiter:
    def __init__(self, limit: int = 30, window: float = 60.0, max_keys: int = 500_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        # hash(key) -> (window index, count in that window, count in the window before), packed
        self._counts: dict[int, int] = {}
        self._swept = 0

    def hit(self, key: str, now: float) -> bool:
        """Record one request; True when it is over the limit."""
        h = hash(key)
        idx = int(now // self.window)
        c = self._counts.get(h)
        if c is None:
            if len(self._counts) >= self.max_keys or idx > self._swept:
                self._sweep(idx)
            self._counts[h] = _pack(idx, 1, 0)
            return self.limit < 1
        last, cur, prev = _unpack(c)
        if last == idx:
            cur += 1
        else:
            cur, prev = 1, (cur if last == idx - 1 else 0)
        self._counts[h] = _pack(idx, cur, prev)
        overlap = 1.0 - (now - idx * self.window) / self.window
        return prev * overlap + cur > self.limit

    def _sweep(self, idx: int) -> None:
        """Forget keys idle for two windows (run at most once per window, or when full)."""
        self._swept = idx
        oldest = idx - 1
        stale = [k for k, c in self._counts.items() if c >> (2 * _COUNT_BITS) < oldest]
        for k in stale:
            del self._counts[k]
        if len(self._counts) >= self.max_keys:  # still full: drop the oldest half
            for k in list(self._counts)[: self.max_keys // 2]:
                del self._counts[k]

    def __len__(self) -> int:
        return len(self._counts)
