"""A consumer gives the memory of a drained backlog back to the system (issue 19: RSS after draining)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from advocacy_common.consumer import _TRIM, TRIM_AFTER_RECORDS, TrimWhenCaughtUp, release_free_memory


def test_trims_once_when_caught_up_after_a_backlog() -> None:
    policy = TrimWhenCaughtUp()
    assert not policy.fetched(TRIM_AFTER_RECORDS - 1)
    assert not policy.fetched(0)  # caught up after a little: nothing to give back
    assert not policy.fetched(1)
    assert policy.fetched(0)  # the backlog is drained
    assert not policy.fetched(0)  # once
    assert not any(policy.fetched(n) for n in (5, 0, 5, 0))


def _rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(_TRIM is None, reason="not glibc")
def test_release_free_memory_returns_freed_heap_pages() -> None:
    # 64 MB of 1 KB blocks (glibc's heap, not pymalloc), then all freed but the last one, which pins
    # the top of the heap: free() alone gives nothing back to the system
    blocks = [os.urandom(1024) for _ in range(64 * 1024)]
    last = blocks[-1]
    del blocks
    before = _rss_bytes()
    release_free_memory()
    after = _rss_bytes()
    assert len(last) == 1024
    assert before - after > 32 * 1024 * 1024, (before, after)
