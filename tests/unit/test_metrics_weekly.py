"""The weekly report's pure rules (metrics' domain/weekly.py): which week is due at a given moment in
the tenant's time zone and week, the report's stable id, and the top lists' order."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from advocacy_metrics.domain import weekly

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("now", "zone", "week_start_index", "due"),
    [
        # Monday weeks in Berlin: from 06:00 on Monday 9 March the week of 2-8 March is due
        (datetime(2026, 3, 9, 6, 0, tzinfo=BERLIN), BERLIN, 0, (date(2026, 3, 2), date(2026, 3, 8))),
        (datetime(2026, 3, 12, 23, 0, tzinfo=BERLIN), BERLIN, 0, (date(2026, 3, 2), date(2026, 3, 8))),
        # before 06:00 on that Monday, still the week before
        (datetime(2026, 3, 9, 5, 59, tzinfo=BERLIN), BERLIN, 0, (date(2026, 2, 23), date(2026, 3, 1))),
        # the same instant is Sunday evening in New York: with Sunday weeks, 1-7 March is due there
        (datetime(2026, 3, 9, 5, 59, tzinfo=BERLIN), NEW_YORK, 6, (date(2026, 3, 1), date(2026, 3, 7))),
        # New York's week holding the switch to summer time (8 March), due on Sunday 15 March 06:00 EDT
        (datetime(2026, 3, 15, 10, 0, tzinfo=ZoneInfo("UTC")), NEW_YORK, 6, (date(2026, 3, 8), date(2026, 3, 14))),
        (datetime(2026, 3, 15, 9, 59, tzinfo=ZoneInfo("UTC")), NEW_YORK, 6, (date(2026, 3, 1), date(2026, 3, 7))),
    ],
)
def test_the_due_week_is_the_last_complete_one_from_six_on_its_first_day(
    now: datetime, zone: ZoneInfo, week_start_index: int, due: tuple[date, date]
) -> None:
    assert weekly.due_week(now, zone, week_start_index) == due
    start, end = due
    assert (end - start).days == 6 and start.weekday() == week_start_index
    assert weekly.previous_week(start) == (
        date.fromordinal(start.toordinal() - 7),
        date.fromordinal(start.toordinal() - 1),
    )


def test_a_report_has_one_id_per_tenant_and_week() -> None:
    a = weekly.report_id("acme", date(2026, 3, 2))
    assert a == weekly.report_id("acme", date(2026, 3, 2))
    assert a != weekly.report_id("acme", date(2026, 3, 9))
    assert a != weekly.report_id("acme-corp", date(2026, 3, 2))


def test_top_lists_rank_by_counted_clicks_then_shares_conversions_reach() -> None:
    rows = [
        {"key": "a", "clicks": 5, "shares": 1, "conversions": 0, "reach": 10},
        {"key": "b", "clicks": 5, "shares": 2, "conversions": 0, "reach": 10},
        {"key": "c", "clicks": 9, "shares": 0, "conversions": 0, "reach": 0},
        {"key": "d", "clicks": 5, "shares": 2, "conversions": 1, "reach": 0},
        {"key": "e", "clicks": 5, "shares": 2, "conversions": 1, "reach": 7},
        {"key": "f", "clicks": 0, "shares": None, "conversions": 0, "reach": None},
    ]
    assert [r["key"] for r in sorted(rows, key=weekly.rank)] == ["c", "e", "d", "b", "a", "f"]
