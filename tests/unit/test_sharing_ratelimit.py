from hypothesis import given
from hypothesis import strategies as st

from advocacy_sharing.adapters.ratelimit import RateLimiter


def test_thirty_a_minute_pass_the_thirty_first_is_limited() -> None:
    rl = RateLimiter(30, 60.0)
    t = 1_000_000.0
    answers = [rl.hit("link:visitor", t + i * 0.01) for i in range(40)]
    assert answers[:30] == [False] * 30
    assert all(answers[30:])
    assert rl.hit("link:other-visitor", t) is False  # per visitor
    assert rl.hit("other-link:visitor", t) is False  # per link


def test_ten_clicks_in_an_hour_are_never_limited() -> None:
    rl = RateLimiter(30, 60.0)
    assert not any(rl.hit("k", 5_000.0 + i * 360) for i in range(10))


def test_a_burst_across_a_minute_boundary_is_still_caught() -> None:
    rl = RateLimiter(30, 60.0)
    start = 60 * 1000 + 50.0  # 10 s before a boundary
    answers = [rl.hit("k", start + i * (20 / 40)) for i in range(40)]  # 40 in 20 s
    assert sum(answers) >= 8


@given(st.integers(min_value=1, max_value=200))
def test_steady_traffic_under_the_rate_passes(per_minute: int) -> None:
    rl = RateLimiter(30, 60.0)
    gap = 60.0 / min(per_minute, 29)
    assert not any(rl.hit("k", 1_000.0 + i * gap) for i in range(90))


def test_idle_keys_are_forgotten() -> None:
    rl = RateLimiter(30, 60.0)
    for i in range(100):
        rl.hit(f"k{i}", 0.0)
    rl.hit("fresh", 600.0)
    assert len(rl) == 1


def test_an_entry_holds_under_80_bytes() -> None:
    """Every visitor of the last two minutes has an entry (issue 19: the limiter was the largest
    thing sharing's redirect grew by under benchmark 3). A str key and a tuple held ~250 bytes, a
    64-bit key and a packed int ~110 (ADR 0029)."""
    import gc
    import tracemalloc

    rl = RateLimiter(30, 60.0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):  # a new key string per request (a code + a visitor hash), as the redirect
            rl.hit(f"code{i % 20:06d}" + f"{i:032x}", 1_000.0 + i / 1000)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(rl) == 20_000
    assert held / 20_000 < 80, f"{held / 20_000:.0f} bytes an entry"


def test_counts_saturate_and_a_flood_still_weighs_in_the_next_window() -> None:
    rl = RateLimiter(30, 60.0)
    t = 60.0 * 1000
    for i in range(1_000):  # far more than a count holds (256: the interpreter's shared small ints)
        rl.hit("k", t + i * 1e-2)
    assert rl.hit("k", t + 59.0)  # still this window, still limited
    assert rl.hit("k", t + 61.0)  # next window: the previous one's (saturated) count weighs in
    assert not rl.hit("k", t + 240.0)  # long idle: forgotten counts


def test_a_previous_window_is_dropped_whole_and_two_windows_are_counted() -> None:
    rl = RateLimiter(30, 60.0)
    t = 60.0 * 1000
    for i in range(50):
        rl.hit(f"old{i}", t + 1.0)
    for i in range(20):
        rl.hit(f"new{i}", t + 61.0)
    assert len(rl) == 70  # this window's and the previous window's
    rl.hit("newest", t + 121.0)
    assert len(rl) == 21  # the window before the previous one is gone


def test_a_clock_stepping_back_keeps_the_counts() -> None:
    rl = RateLimiter(3, 60.0)
    t = 60.0 * 1000 + 30.0
    assert not any(rl.hit("k", t + i) for i in range(3))
    assert rl.hit("k", t - 45.0)  # the wall clock stepped back into the window before: still limited


def test_the_table_stays_bounded_by_max_keys() -> None:
    rl = RateLimiter(30, 60.0, max_keys=1_000)
    for i in range(10_000):
        rl.hit(f"k{i}", 1_000.0 + i * 1e-3)
        assert len(rl) <= 1_001
    assert rl.hit("k9999", 1_010.0) is False  # the newest counts survive
