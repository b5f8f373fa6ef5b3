"""Pure rules: points per action, leaderboard windows, competition ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

ALL_TIME_START = date(1970, 1, 1)
WINDOWS = ("all", "week", "month")


@dataclass(frozen=True, slots=True)
class Rules:
    version: int = 0
    share: int = 10
    click: int = 1
    conversion: dict[str, int] = field(default_factory=lambda: {"signup": 20, "lead": 30, "sale": 50})
    suggestion_approved: int = 15


DEFAULT_RULES = Rules()


def window_start(window: str, at: date, week_starts_on: int = 0) -> date:
    """First day of the window containing ``at`` (week_starts_on: 0 = Monday ... 6 = Sunday)."""
    if window == "all":
        return ALL_TIME_START
    if window == "week":
        return at - timedelta(days=(at.weekday() - week_starts_on) % 7)
    if window == "month":
        return at.replace(day=1)
    raise ValueError(f"unknown window {window!r}")


def window_end(window: str, start: date) -> date | None:
    """First day after the window (exclusive end), None for all time."""
    if window == "all":
        return None
    if window == "week":
        return start + timedelta(days=7)
    nxt = start.replace(day=28) + timedelta(days=4)
    return nxt.replace(day=1)


def windows_for(at: datetime, week_starts_on: int = 0) -> list[tuple[str, date]]:
    d = at.date()
    return [(w, window_start(w, d, week_starts_on)) for w in WINDOWS]


def competition_ranks(points: Sequence[int], first_rank: int = 1, before_equal: int = 0) -> list[int]:
    """Ranks for a page sorted by points descending ("1, 1, 3").

    ``first_rank`` is the rank of the page's first row (1 + rows with more points); rows with fewer
    points than the first get 1 + rows above them, ``before_equal`` being the rows on earlier
    pages with the same points as the first row.
    """
    ranks: list[int] = []
    for i, p in enumerate(points):
        if i > 0 and p == points[i - 1]:
            ranks.append(ranks[-1])
        elif i == 0:
            ranks.append(first_rank)
        else:
            ranks.append(first_rank + before_equal + i)
    return ranks
