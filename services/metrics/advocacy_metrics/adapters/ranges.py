"""Report ranges: ``from`` / ``to`` as days in the tenant's time zone, validated (pure).

Either bound may be a date (``2026-03-01``) or an RFC 3339 instant (``2026-03-01T08:00:00Z``), which
counts as the tenant's local day it falls on. Both bounds are inclusive. Without ``to`` the range
ends today; without ``from`` it covers the 30 days up to ``to``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from advocacy_common.errors import Unprocessable

MAX_RANGE_DAYS = 3 * 365 + 1  # three years, a leap day included
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class DayRange:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def instants(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The half-open interval of instants [start 00:00, day after end 00:00) in ``zone``."""
        lo = datetime.combine(self.start, time(), zone)
        hi = datetime.combine(self.end + timedelta(days=1), time(), zone)
        return lo, hi


def parse_day(raw: str, field: str, zone: ZoneInfo) -> date:
    value = raw.strip()
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise Unprocessable.field(field, f"{raw!r} is not a date (YYYY-MM-DD) or an RFC 3339 time") from e
    if instant.tzinfo is None:
        raise Unprocessable.field(field, f"{raw!r} has no UTC offset (RFC 3339 times need one, e.g. Z)")
    return instant.astimezone(zone).date()


def resolve(raw_from: str | None, raw_to: str | None, zone: ZoneInfo, today: date) -> DayRange:
    end = parse_day(raw_to, "to", zone) if raw_to else today
    start = parse_day(raw_from, "from", zone) if raw_from else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Unprocessable.field("from", f"from ({start}) is after to ({end})")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise Unprocessable.field("to", f"the range {start}..{end} is longer than 3 years ({MAX_RANGE_DAYS} days)")
    return DayRange(start, end)


def resolve_optional(raw_from: str | None, raw_to: str | None, zone: ZoneInfo, today: date) -> DayRange | None:
    """For per-employee and per-content totals: no bounds at all means all time."""
    if not raw_from and not raw_to:
        return None
    return resolve(raw_from, raw_to, zone, today)
