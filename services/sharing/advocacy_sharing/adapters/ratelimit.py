"""The redirect's per-visitor, per-link rate limit (more than N requests a minute: 429).

A sliding-window estimate from two fixed windows (the previous minute's count weighted by how much
of it still overlaps the last 60 s, plus this minute's count): O(1) time per request, accurate to
within a request or two at the boundary. Per process on purpose: the 429 has to be answered at the
edge, and the verdict travels with the click.

Every visitor of the last two minutes has an entry, so the table is what grows with traffic (1,000
new visitors a second hold up to 120,000 entries). It is two tables, this window's counts and the
previous window's: when a window ends the older table is dropped whole (no sweep over the entries),
and an entry is one small object. Its key is the ``hash()`` of (link, visitor) cut to 60 bits
(SipHash with a per-process secret, so a visitor cannot pick a key that collides with another's;
two of 500,000 keys share 60 bits with odds of ~1e-7), an int of 32 bytes; its count saturates at
:data:`_SMALL_MAX` or just above the limit, whichever is larger, so every count of a limit under 256
is one of the interpreter's shared small ints, which cost nothing per entry. Measured with tracemalloc
(issue 19, docs/adr/0029-sharing-memory-peak.md): ~64 bytes an entry (a packed (window, count, count)
int beside the key held ~110; a str key and a tuple of three ints ~210). Neither table is tracked by
the garbage collector, so a few hundred thousand entries do not turn every full collection into a
pause on the redirect's path.
"""

from __future__ import annotations

_KEY_MASK = (1 << 60) - 1  # an int under 2**60 is two 30-bit digits: 32 bytes (64 bits take 48)
_SMALL_MAX = 256  # the interpreter's cached ints end here


class RateLimiter:
    def __init__(self, limit: int = 30, window: float = 60.0, max_keys: int = 500_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        # above the limit a count only needs to stay above it; a previous window's count weighs in by
        # its overlap, so it saturates well above the limit too (a flood's weight is not lost)
        self._cap = max(_SMALL_MAX, limit + 1)
        self._idx: int | None = None  # the window _cur counts
        self._cur: dict[int, int] = {}  # key -> requests in window _idx
        self._prev: dict[int, int] = {}  # key -> requests in window _idx - 1

    def hit(self, key: str, now: float) -> bool:
        """Record one request; True when it is over the limit."""
        h = hash(key) & _KEY_MASK
        idx = int(now // self.window)
        if idx != self._idx:
            if self._idx is not None and idx < self._idx:  # the clock stepped back: the same window
                idx = self._idx
            else:
                self._roll(idx)
        cur = self._cur.get(h)
        if cur is None:
            if len(self._cur) + len(self._prev) >= self.max_keys:
                self._make_room()
            cur = 1
        elif cur < self._cap:
            cur += 1
        self._cur[h] = cur
        prev = self._prev.get(h, 0)
        overlap = min(1.0, 1.0 - (now - idx * self.window) / self.window)
        return prev * overlap + cur > self.limit

    def _roll(self, idx: int) -> None:
        """A new window: this window's table becomes the previous one (the one before is dropped),
        or both go when a whole window passed without a request."""
        self._prev = self._cur if self._idx is not None and idx == self._idx + 1 else {}
        self._cur = {}
        self._idx = idx

    def _make_room(self) -> None:
        """Full: the previous window's counts go first; when this window alone holds ``max_keys``,
        its counts become the previous window's (weighed by their overlap from now on)."""
        if self._prev:
            self._prev = {}
        else:
            self._prev, self._cur = self._cur, {}

    def __len__(self) -> int:
        return len(self._cur) + len(self._prev)
