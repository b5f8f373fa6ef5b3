"""A consumer's memory (issue 19): batches bounded in bytes, a drained backlog's heap given back."""

from __future__ import annotations

import gc
import importlib
import os
import time
import weakref
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from advocacy_common import consumer
from advocacy_common.consumer import (
    _TRIM,
    BATCH_MAX_BYTES,
    HEADER_ALLOWANCE,
    TRIM_AFTER_RECORDS,
    BatchBound,
    TrimWhenCaughtUp,
    release_free_memory,
)


def test_trims_once_when_caught_up_after_a_backlog() -> None:
    policy = TrimWhenCaughtUp()
    assert not policy.fetched(TRIM_AFTER_RECORDS - 1)
    assert not policy.fetched(0)  # caught up after a little: nothing to give back
    assert not policy.fetched(1)
    assert policy.fetched(0)  # the backlog is drained
    assert not policy.fetched(0)  # once
    assert not any(policy.fetched(n) for n in (5, 0, 5, 0))


def test_trims_the_tail_of_a_burst_once_caught_up_for_a_while() -> None:
    now = [0.0]
    policy = TrimWhenCaughtUp(idle_seconds=5.0, clock=lambda: now[0])
    assert not policy.fetched(0)  # nothing applied yet: nothing to give back, however long
    now[0] = 60.0
    assert not policy.fetched(0)
    assert not policy.fetched(300)  # a burst's tail, under TRIM_AFTER_RECORDS
    assert not policy.fetched(0)  # caught up at 60 s
    now[0] = 64.0
    assert not policy.fetched(0)
    assert not policy.fetched(1)  # a record: the quiet starts again
    now[0] = 66.0
    assert not policy.fetched(0)  # caught up again at 66 s
    now[0] = 70.9
    assert not policy.fetched(0)
    now[0] = 71.0
    assert policy.fetched(0)  # quiet for 5 s since
    now[0] = 100.0
    assert not policy.fetched(0)  # once


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


def test_release_free_memory_collects_what_the_batches_left_first() -> None:
    """Cycles and free lists pin Python's arenas: a full collection comes before the trim."""

    class Node:
        other: Node

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.disable()  # as while a batch is applied: only the release can free the cycle
    try:
        release_free_memory()
    finally:
        gc.enable()
    assert gone() is None


def test_release_free_memory_exports_when_it_ran() -> None:
    """bench.pipeline reads a drained consumer's RSS only after this time passes its last commit."""
    sample = "advocacy_heap_trimmed_at_seconds"
    before = time.time()
    release_free_memory()
    assert before <= (REGISTRY.get_sample_value(sample) or 0.0) <= time.time()


def _records(n: int, value_bytes: int) -> list[ConsumerRecord[bytes, bytes]]:
    value = b"x" * value_bytes
    return [ConsumerRecord("t", 0, i, 0, 0, b"key", value, None, 3, value_bytes, ()) for i in range(n)]


def test_a_batch_of_large_events_is_bounded_by_bytes_small_ones_by_count() -> None:
    bound = BatchBound(max_records=5000)
    assert bound.next_records() == 5000  # nothing seen yet
    bound.fetched(_records(5000, 350))  # clicks: the count is the bound
    assert bound.next_records() == 5000
    bound.fetched(_records(10, 512 * 1024))  # content events at the outbox's largest
    assert bound.next_records() * (512 * 1024) <= BATCH_MAX_BYTES
    assert bound.next_records() == BATCH_MAX_BYTES // (512 * 1024 + 3 + HEADER_ALLOWANCE)
    bound.fetched([])  # an empty fetch says nothing about sizes
    assert bound.next_records() == 15
    bound.fetched(_records(1, 64 * 1024 * 1024))  # one record over the bound still goes, alone
    assert bound.next_records() == 1
    bound.fetched(_records(100, 100))
    assert bound.next_records() == 5000


def test_headers_count_towards_the_bound() -> None:
    bound = BatchBound(max_records=1_000_000)
    bound.fetched(_records(1000, 1000))
    assert bound.next_records() == BATCH_MAX_BYTES // (1000 + 3 + HEADER_ALLOWANCE)


def test_the_startup_heap_is_frozen_once() -> None:
    """Full collections no longer walk what the process imported (gc.freeze), done once per process."""
    consumer._Frozen.done = False
    try:
        consumer.freeze_startup_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules and models imported so far
        assert consumer._Frozen.done
        consumer.freeze_startup_heap()
        assert gc.get_freeze_count() == frozen  # once: a second consumer in the process changes nothing
    finally:
        gc.unfreeze()


class _Node:
    other: _Node


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_batch_ending_while_another_is_applied_collects_its_cycles() -> None:
    """Two batches overlap (two consumers of one process): collection stays off until both end, so
    batch ends collect what they left, or a drain that always has a batch in flight never would."""
    assert gc.isenabled()
    with consumer.gc_paused():  # a batch in flight all along
        gone = []
        for _ in range(consumer._GC_YOUNG_EVERY):
            with consumer.gc_paused():
                gone.append(_cycle())
        assert not gc.isenabled()
        assert all(g() is None for g in gone)
    assert gc.isenabled()


def test_a_drain_collects_every_few_batches_and_turns_collection_on_when_it_ends() -> None:
    """Between a drain's batches collection stays off; the batches' cycles are collected every
    _GC_YOUNG_EVERY batch ends (not at each: it walked the same live batches each time), by the
    run loop once it let go of the batch (gc_between_batches), and the cycles of the last batches
    when the drain ends."""
    assert gc.isenabled()
    with consumer.gc_draining():
        for _ in range(3):
            gone = []
            for _ in range(consumer._GC_YOUNG_EVERY):
                with consumer.gc_paused():
                    gone.append(_cycle())
                assert not gc.isenabled()
                assert gone[-1]() is not None  # the run loop collects, not the batch's end
                consumer.gc_between_batches()
            assert all(g() is None for g in gone)
        with consumer.gc_paused():
            last = _cycle()
        consumer.gc_between_batches()
        assert last() is not None  # waits for the next collection
    assert gc.isenabled()
    assert last() is None


def test_a_long_drain_collects_the_older_generations_too() -> None:
    """A drain that never catches up still runs middle and full collections, as the collector's
    thresholds would (10 young per middle, 10 middle per full)."""
    runs: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            runs.append(info["generation"])

    consumer._GcPause.young = consumer._GcPause.middle = 0
    gc.callbacks.append(seen)
    try:
        with consumer.gc_draining():
            for _ in range(consumer._GC_YOUNG_EVERY * consumer._GC_MIDDLE_EVERY * consumer._GC_FULL_EVERY):
                with consumer.gc_paused():
                    pass
                consumer.gc_between_batches()
    finally:
        gc.callbacks.remove(seen)
    assert len(runs) == consumer._GC_MIDDLE_EVERY * consumer._GC_FULL_EVERY
    assert runs.count(2) == 1
    assert runs.count(1) == consumer._GC_FULL_EVERY - 1


@pytest.mark.parametrize("service", ["gamification", "metrics"])
def test_a_backlog_drains_with_one_batch_in_hand(service: str) -> None:
    """ADR 0036, 0037: in a backlog gamification and metrics hold one decoded batch, not two (they
    fetch ahead only after a batch of fewer than ``fetch_ahead_below`` events: live ones, the click
    path's wait), which is what lets their backlog batches be 9,000 (with clicks as light data) under
    the RSS two of 5,000 left; and for clicks (~350 bytes) the count bound is the one that binds,
    below the byte bound."""
    spec = importlib.import_module(f"advocacy_{service}.consumers").CONSUMERS[0]
    settings = importlib.import_module(f"advocacy_{service}.settings")
    batch_max = getattr(settings, f"{service.capitalize()}Settings").model_fields["consumer_batch_max"].default
    runner = consumer.ConsumerRunner(
        spec,
        service=service,
        bootstrap="unused",
        sessionmaker=None,  # type: ignore[arg-type]
        producer=lambda: None,
    )
    assert 5000 < batch_max <= 9000
    assert batch_max * (350 + HEADER_ALLOWANCE) <= BATCH_MAX_BYTES
    assert runner._fetches_ahead(1)  # live
    assert spec.fetch_ahead_below is not None
    assert runner._fetches_ahead(spec.fetch_ahead_below - 1)
    assert not runner._fetches_ahead(spec.fetch_ahead_below)
    assert spec.fetch_ahead_below <= batch_max // 2  # a backlog's batches are one in hand
    assert not runner._fetches_ahead(batch_max)
