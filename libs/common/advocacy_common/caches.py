"""In-memory caches bounded in bytes, not only in entries (issue 12: a cache keyed or filled by
what a tenant sends must not grow with the size of what it sends).

:class:`SizedLRU` is :class:`cachetools.LRUCache` with a cost per entry: ``cost(key, value)``
estimates the bytes an entry holds (measure it with tracemalloc where it is used, and say so),
and the least recently used entries go once the sum passes ``max_bytes``. An entry costlier
than the whole budget is not kept at all: the caller computes it again next time.

Hot paths whose keys are already bounded (``functools.lru_cache`` on a code-shaped or trimmed key)
keep ``lru_cache``, which is implemented in C: their byte bound is entries x the largest key, and
each such cache states it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K")
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    def __init__(self, max_bytes: int, cost: Callable[[K, V], int]) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._cost = cost
        self._entries: LRUCache[K, tuple[int, V]] = LRUCache(maxsize=max_bytes, getsizeof=lambda e: e[0])

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> bool:
        """Keep ``value`` (evicting the least recently used as needed); False if it alone costs more
        than the budget, in which case it is not kept."""
        cost = max(1, self._cost(key, value))
        if cost > self.max_bytes:
            self._entries.pop(key, None)
            return False
        self._entries[key] = (cost, value)
        return True

    @property
    def bytes(self) -> int:
        """The estimated bytes held."""
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
