"""Caches bounded in bytes (issue 12): what a tenant sends cannot grow a cache past its budget."""

from __future__ import annotations

from advocacy_common.caches import SizedLRU
from advocacy_sharing.adapters.redirect import LINK_OVERHEAD_BYTES, LinkCache, LinkTarget


def test_a_sized_lru_keeps_its_byte_budget_and_evicts_the_least_recently_used() -> None:
    cache: SizedLRU[str, bytes] = SizedLRU(1000, lambda k, v: len(k) + len(v))
    for i in range(10):
        assert cache.put(f"k{i}", b"x" * 98)  # 100 bytes each: exactly full
    assert cache.bytes == 1000 and len(cache) == 10
    assert cache.get("k0") == b"x" * 98  # k0 is now the most recently used
    cache.put("big", b"y" * 297)  # 300 bytes: three entries go, the oldest first, never k0
    assert cache.bytes <= 1000
    assert [cache.get(f"k{i}") is None for i in (1, 2, 3)] == [True, True, True]
    assert cache.get("k0") is not None and cache.get("k4") is not None


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    cache: SizedLRU[str, bytes] = SizedLRU(1000, lambda k, v: len(k) + len(v))
    cache.put("a", b"1")
    assert not cache.put("huge", b"z" * 5000)
    assert cache.get("huge") is None and cache.get("a") == b"1"


def _target(url_bytes: int, content: str = "c1") -> LinkTarget:
    return LinkTarget("t1", content, "linkedin", b"h" * url_bytes, b"&x", None, False, 0.0)


def test_the_link_cache_is_bounded_in_bytes_by_long_urls() -> None:
    """200,000 entries of 2 KB URLs was 400 MB: the byte budget now ends it first."""
    cache = LinkCache(None, max_size=200_000, max_bytes=1_000_000)  # type: ignore[arg-type]
    for i in range(2000):
        cache.put(f"code{i:05d}", _target(2048, content=f"c{i}"))
    assert cache.bytes <= 1_000_000
    per_entry = LINK_OVERHEAD_BYTES + 2048 + 2 + 2 + 9 + 5
    assert len(cache) == 1_000_000 // per_entry
    assert "code01999" in cache._links and "code00000" not in cache._links  # the oldest went first
    # the reverse index holds only what is cached
    assert len(cache._by_content) == len(cache)


def test_the_link_cache_accounts_replacements_and_forgets() -> None:
    cache = LinkCache(None, max_bytes=1_000_000)  # type: ignore[arg-type]
    cache.put("a", _target(100))
    first = cache.bytes
    cache.put("a", _target(100))  # the same code again costs nothing more
    assert cache.bytes == first
    cache.forget("a")
    assert cache.bytes == 0 and len(cache) == 0 and cache._by_content == {}
