"""``adoption.steps`` (the per-day net changes kept in ``adoption_steps``) against a brute force
that evaluates each person's nine values day by day from the definitions."""

from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from hypothesis import example, given
from hypothesis import strategies as st

from advocacy_metrics.domain import adoption

D0 = date(2026, 1, 20)
T0 = datetime(2026, 1, 20, tzinfo=UTC)

#: Records as ``(updated_at, flag)``, in any order (a late event fills in the past).
records = st.lists(
    st.tuples(st.integers(0, 120 * 24).map(lambda h: T0 + timedelta(hours=h)), st.booleans()),
    max_size=6,
    unique_by=lambda r: r[0],
)
share_days = st.lists(st.integers(0, 120).map(lambda n: D0 + timedelta(days=n)), max_size=12)


def brute(
    shares: list[date],
    enrolled: list[tuple[datetime, bool]],
    directory: list[tuple[datetime, bool]],
    wsi: int,
    day: date,
) -> list[int]:
    def flag(rows: list[tuple[datetime, bool]]) -> bool:
        dated = [r for r in rows if r[0].date() <= day]
        return max(dated)[1] if dated else False

    def shared(first: date) -> bool:
        return any(first <= s <= day for s in shares)

    e, y = flag(enrolled), flag(directory)
    a = shared(day - timedelta(days=29))
    w = shared(day - timedelta(days=(day.weekday() - wsi) % 7))
    m = shared(day.replace(day=1))
    return [int(v) for v in (e, y, a, a and e, a and y, w and e, w and y, m and e, m and y)]


def history(rows: list[tuple[datetime, bool]]) -> list[tuple[date, bool]]:
    return [(at.date(), f) for at, f in sorted(rows)]


@given(share_days, records, records, st.integers(0, 6))
def test_steps_sum_to_the_values_of_every_day(
    shares: list[date], enrolled: list[tuple[datetime, bool]], directory: list[tuple[datetime, bool]], wsi: int
) -> None:
    got = adoption.steps(shares, history(enrolled), history(directory), wsi)
    days = [D0 + timedelta(days=n) for n in range(-2, 180)]
    want: dict[date, list[int]] = {}
    before = [0] * 9
    for day in days:
        now = brute(shares, enrolled, directory, wsi, day)
        if now != before:
            want[day] = [n - b for n, b in zip(now, before, strict=True)]
        before = now
    assert got == want  # the same change days, none of them all-zero
    running = list(
        accumulate((got.get(d, [0] * 9) for d in days), lambda x, y: [a + b for a, b in zip(x, y, strict=True)])
    )
    assert running[-1][2:] == [0] * 7  # every span has ended 60 days after the last share


@given(share_days, records, records, st.integers(0, 6))
def test_batch_difference_adds_up(
    shares: list[date], enrolled: list[tuple[datetime, bool]], directory: list[tuple[datetime, bool]], wsi: int
) -> None:
    """What the consumer adds for a batch (all rows minus the rows before it) plus the steps
    before it are the steps of all the rows."""
    old = adoption.steps(shares[::2], history(enrolled[::2]), history(directory[1::2]), wsi)
    total = {d: list(v) for d, v in old.items()}
    adoption.add_steps(total, adoption.steps(shares, history(enrolled), history(directory), wsi))
    adoption.add_steps(total, old, -1)
    whole = adoption.steps(shares, history(enrolled), history(directory), wsi)
    assert {d: v for d, v in total.items() if any(v)} == whole


def test_a_share_is_active_for_30_days_and_this_week_ends_with_the_week() -> None:
    s = date(2026, 3, 4)  # a Wednesday
    got = adoption.steps([s], [(date(2026, 1, 1), True)], [], 0)
    assert got[s] == [0, 0, 1, 1, 0, 1, 0, 1, 0]
    assert got[date(2026, 3, 9)] == [0, 0, 0, 0, 0, -1, 0, 0, 0]  # Monday: a new week
    assert got[date(2026, 4, 1)] == [0, 0, 0, 0, 0, 0, 0, -1, 0]
    assert got[s + timedelta(days=30)] == [0, 0, -1, -1, 0, 0, 0, 0, 0]


def test_the_spans_the_scan_counts_in_are_30_days_this_week_and_this_month() -> None:
    """What ``adoption_counts_scan`` derives from ``as_of`` and the week start (the steps' oracle)."""
    tuesday = date(2026, 3, 31)
    assert adoption.current_spans(tuesday, 0) == (date(2026, 3, 2), date(2026, 3, 30), date(2026, 3, 1))
    assert adoption.current_spans(tuesday, 6) == (date(2026, 3, 2), date(2026, 3, 29), date(2026, 3, 1))


# a month's first day is 30 days before its 31st: the oldest share day a new one depends on
@example([date(2026, 1, 1)], {date(2026, 1, 31)}, [(T0, True)], 0)
@given(
    share_days,
    st.sets(st.integers(0, 120).map(lambda n: D0 + timedelta(days=n)), max_size=4),
    records,
    st.integers(0, 6),
)
def test_new_share_days_read_only_their_neighbourhood(
    shares: list[date], new: set[date], enrolled: list[tuple[datetime, bool]], wsi: int
) -> None:
    """The consumer's shortcut for a batch of share days equals the difference of the whole steps."""
    before = [d for d in shares if d not in new]
    want = {d: list(v) for d, v in adoption.steps([*before, *new], history(enrolled), [], wsi).items()}
    adoption.add_steps(want, adoption.steps(before, history(enrolled), [], wsi), -1)
    got = adoption.new_share_steps([*before, *new], new, history(enrolled), [], wsi)
    assert got == {d: v for d, v in want.items() if any(v)}
