"""Adoption: how much of the eligible workforce shares, and how that moves week by week (pure parts).

- enrolled: members whose latest membership update at the end of the range says enrolled;
- eligible (the denominator): when the tenant has a directory (SCIM provisioning, issue 17), the
  people whose latest directory record at the end of the range is active; otherwise the enrolled;
- active: eligible people with a share in the 30 days up to ``as_of`` (the range end, or today);
- active rate = active / eligible;
- this week and this month: the eligible people who shared from the start of ``as_of``'s week (the
  tenant's ``week_starts_on``) or month up to ``as_of``, and their share of the eligible;
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


def current_periods(as_of: date, week_start_index: int) -> tuple[date, date]:
    """The first days of ``as_of``'s week and month: "this week" and "this month" run from them to
    ``as_of`` inclusive."""
    return week_start(as_of, week_start_index), as_of.replace(day=1)


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
    eligible: int | None = None,
    from_directory: bool = False,
    shared_this_week: int = 0,
    shared_this_month: int = 0,
) -> dict[str, Any]:
    """``eligible``: the directory's active people when ``from_directory``; None means the enrolled."""
    lapsed = {d: n for d, n in lapsed_by_day.items() if d <= as_of}  # a lapse in the future has not happened
    workforce = enrolled if eligible is None else eligible
    week_from, month_from = current_periods(as_of, week_start_index)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": as_of.isoformat(),
        "enrolled": enrolled,
        "eligible": workforce,
        "eligible_source": "directory" if from_directory else "enrolled",
        "active_last_30_days": active_members,
        "active_rate": ratio(active_members, workforce),
        "sharers_last_30_days": active_sharers,
        "this_week": {
            "from": week_from.isoformat(),
            "sharers": shared_this_week,
            "share_rate": ratio(shared_this_week, workforce),
        },
        "this_month": {
            "from": month_from.isoformat(),
            "sharers": shared_this_month,
            "share_rate": ratio(shared_this_month, workforce),
        },
        "weeks": [
            {
                "week_start": ws.isoformat(),
                "new_sharers": _in_week(new_by_day, ws, start, end),
                "lapsed_sharers": _in_week(lapsed, ws, start, end),
            }
            for ws in weeks_in(start, end, week_start_index)
        ],
    }
