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

The counts at ``as_of`` are kept up per day as *steps* (:func:`steps`, table ``adoption_steps``):
each is a sum over people of a 0/1 function of the day that changes on a few days only, so the
table holds the net change per day and a count at ``as_of`` is the sum of the rows up to it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from advocacy_metrics.domain import ACTIVE_DAYS, month_of, week_start
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


def current_spans(as_of: date, week_start_index: int) -> tuple[date, date, date]:
    """The first days of the spans adoption counts sharers in, each running to ``as_of`` inclusive:
    the last 30 days (``ACTIVE_DAYS``), this week and this month."""
    return (as_of - timedelta(days=ACTIVE_DAYS - 1), *current_periods(as_of, week_start_index))


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


#: The per-day net changes kept in ``adoption_steps``, in this order. For a person and a day D:
#: E = enrolled at the end of D (the latest membership record dated D or before says enrolled),
#: Y = active in the directory at the end of D (the same rule on directory records),
#: A = shared in [D - 29, D] (the 30 days up to D), W = shared from D's week start to D,
#: M = shared from the first of D's month to D.
STEP_COLUMNS = (
    "enrolled",  # E
    "in_directory",  # Y
    "active",  # A: the "sharers_last_30_days", eligible or not
    "active_enrolled",  # A and E
    "active_in_directory",  # A and Y
    "week_enrolled",  # W and E
    "week_in_directory",  # W and Y
    "month_enrolled",  # M and E
    "month_in_directory",  # M and Y
)

#: A history: ``(local day, flag)`` records in ``updated_at`` order (so the days never go down).
History = Sequence[tuple[date, bool]]


def steps(
    share_days: Iterable[date], enrolled: History, directory: History, week_start_index: int
) -> dict[date, list[int]]:
    """One person's net change of each :data:`STEP_COLUMNS` value, on the days it changes.

    The values can change only on a membership or directory record's day, on a share day ``s``,
    and on the day after each span a share lights up ends: ``s + 30`` (the 30 days), the next
    week start, the next first of a month. Only non-zero changes are returned, so summing the
    rows dated ``as_of`` or before gives the values on ``as_of``. (Days are ordinals inside: a
    tenant's rebuild runs this for every person.)"""
    shares = sorted({d.toordinal() for d in share_days})
    e_days, e_flags = [d.toordinal() for d, _ in enrolled], [f for _, f in enrolled]
    y_days, y_flags = [d.toordinal() for d, _ in directory], [f for _, f in directory]
    points = {*e_days, *y_days}
    for s in shares:
        points.update(
            (s, s + ACTIVE_DAYS, s - (s - 1 - week_start_index) % 7 + 7, _next_month(date.fromordinal(s)).toordinal())
        )
    out: dict[date, list[int]] = {}
    before = (False,) * len(STEP_COLUMNS)
    for day in sorted(points):
        i = bisect_right(shares, day)
        last = shares[i - 1] if i else day - 366  # no share yet: nothing lit
        i = bisect_right(e_days, day)
        e = bool(i) and e_flags[i - 1]
        i = bisect_right(y_days, day)
        y = bool(i) and y_flags[i - 1]
        a = last > day - ACTIVE_DAYS
        w = last >= day - (day - 1 - week_start_index) % 7  # ordinal 1 is a Monday
        m = last >= day - 30 and last > day - date.fromordinal(day).day  # a month's first: <= 30 days back
        now = (e, y, a, a and e, a and y, w and e, w and y, m and e, m and y)
        if now != before:
            out[date.fromordinal(day)] = [int(n) - int(b) for n, b in zip(now, before, strict=True)]
            before = now
    return out


#: No span looks back further than 30 days (the 30 days are [D - 29, D], a month's first day is at
#: most 30 days before D, a week's 6); one day more for margin.
REACH = timedelta(days=31)


def new_share_steps(
    share_days: Iterable[date], new: set[date], enrolled: History, directory: History, week_start_index: int
) -> dict[date, list[int]]:
    """``steps(share_days) - steps(share_days without new)``: what new share days change, with the
    membership and directory histories unchanged. A value on D depends only on the share days of
    [D - 30, D], so the two differ only from the first new day to ``REACH`` after the last, and
    only the share days within ``REACH`` of those are read: a person with years of shares costs
    what one with a month does."""
    if not new:
        return {}
    lo, hi = min(new) - REACH, max(new) + REACH
    near = [d for d in share_days if lo <= d <= hi]
    out = steps(near, enrolled, directory, week_start_index)
    add_steps(out, steps([d for d in near if d not in new], enrolled, directory, week_start_index), -1)
    return {d: c for d, c in out.items() if any(c)}


def _next_month(day: date) -> date:
    first = month_of(day)
    return (first + timedelta(days=32)).replace(day=1)


def add_steps(into: dict[date, list[int]], more: dict[date, list[int]], sign: int = 1) -> None:
    """``into += sign * more``, row by row (rows that reach all zeros stay, as zeros)."""
    for day, change in more.items():
        row = into.setdefault(day, [0] * len(STEP_COLUMNS))
        for i, n in enumerate(change):
            row[i] += sign * n
