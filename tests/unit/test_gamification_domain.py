from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from advocacy_gamification import domain


def reference_ranks(points: list[int]) -> list[int]:
    return [1 + sum(1 for q in points if q > p) for p in points]


def test_competition_ranking_shares_ranks() -> None:
    assert domain.competition_ranks([30, 20, 20, 10]) == [1, 2, 2, 4]


@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=60), st.integers(1, 20))
def test_paged_ranks_equal_global_ranks(points: list[int], page_size: int) -> None:
    points = sorted(points, reverse=True)
    expected = reference_ranks(points)
    got: list[int] = []
    for start in range(0, len(points), page_size):
        page = points[start : start + page_size]
        p0 = page[0]
        first_rank = 1 + sum(1 for q in points if q > p0)
        before_equal = sum(1 for q in points[:start] if q == p0)
        got += domain.competition_ranks(page, first_rank=first_rank, before_equal=before_equal)
    assert got == expected


def test_windows() -> None:
    sunday = date(2026, 11, 22)
    assert domain.window_start("week", sunday) == date(2026, 11, 16)  # Monday
    assert domain.window_start("week", sunday, week_starts_on=6) == sunday
    assert domain.window_start("month", sunday) == date(2026, 11, 1)
    assert domain.window_end("month", date(2026, 12, 1)) == date(2027, 1, 1)
    assert domain.window_end("week", date(2026, 11, 16)) == date(2026, 11, 23)


def test_a_deactivated_person_is_not_ranked_whatever_their_membership() -> None:
    assert domain.is_ranked(True, "ranked") and domain.is_ranked(True, "anonymous", active=True)
    assert not domain.is_ranked(True, "ranked", active=False)
    assert not domain.is_ranked(True, "hidden") and not domain.is_ranked(False, "ranked")


@given(size=st.none() | st.integers(min_value=0, max_value=10_000), participants=st.integers(0, 10_000))
def test_the_per_capita_divisor_is_the_directory_size_when_known_and_never_zero(
    size: int | None, participants: int
) -> None:
    n = domain.per_capita_divisor(size, participants)
    assert n >= 1
    assert n == (size if size else max(participants, 1))


def test_the_points_bucket_is_the_signed_octave() -> None:
    assert [domain.points_bucket(p) for p in (0, 1, 2, 3, 4, 7, 8, 15, 16)] == [0, 1, 2, 2, 3, 3, 4, 4, 5]
    assert [domain.points_bucket(p) for p in (-1, -2, -3, -4)] == [-1, -2, -2, -3]
    assert domain.points_bucket(2**31 - 1) == 31 and domain.points_bucket(-(2**31)) == -32


@given(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**31))
def test_the_points_bucket_never_decreases_as_the_points_grow(points: int, more: int) -> None:
    """The rank indexes' order (bucket desc) is the boards' order (points desc)."""
    assert domain.points_bucket(points) <= domain.points_bucket(points + more)
