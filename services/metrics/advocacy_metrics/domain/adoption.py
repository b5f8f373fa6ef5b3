"""Adoption: how many enrolled members share, and how that moves week by week (pure parts).

- enrolled: members whose latest membership update at the end of the range says enrolled;
- active: enrolled members with a share in the 30 days up to ``as_of`` (the range end, or today);
- active rate = active / enrolled;
- per week: new sharers (first share ever in that week) and lapsed sharers (reached 30 days without
  a share in that week, see :func:`advocacy_metrics.domain.lapse_days`).
Weeks start on the tenant's ``week_starts_on``; the first and last weeks count only days in range.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from advocacy_metrics.domain import week_start
from advocacy_metrics.domain.measures import ratio


def weeks_in(start: date, end: date, week_start_index: int) -> list[date]:
    first = week_start(start, week_start_index)
    return [first + timedelta(days=7 * i) for i in range((end - first).days // 7 + 1)]


def _in_week(by_day: dict[date, int], ws: date, start: date, end: date) -> int:
    lo, hi = max(ws, start), min(ws + timedelta(days=6), end)
    return sum(n for d, n in by_day.items() if lo <= d <= hi)


def adoption_report(
    *,
    start: date,
    end: date,
    as_of: date,
    week_start_index: int,
    enrolled: int,
    active_members: int,
    active_sharers: int,
    new_by_day: dict[date, int],
    lapsed_by_day: dict[date, int],
) -> dict[str, Any]:
    lapsed = {d: n for d, n in lapsed_by_day.items() if d <= as_of}  # a lapse in the future has not happened
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": as_of.isoformat(),
        "enrolled": enrolled,
        "active_last_30_days": active_members,
        "active_rate": ratio(active_members, enrolled),
        "sharers_last_30_days": active_sharers,
        "weeks": [
            {
                "week_start": ws.isoformat(),
                "new_sharers": _in_week(new_by_day, ws, start, end),
                "lapsed_sharers": _in_week(lapsed, ws, start, end),
            }
            for ws in weeks_in(start, end, week_start_index)
        ],
    }
