"""Every date-time a caller sends is an ``Instant``: aware and within years 1900-9000, so no UTC
conversion of it can overflow (year 1 at +01:00 was a 500 on several routes, found by make fuzz)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from advocacy_common.instants import Instant, within_years

pytestmark = pytest.mark.unit

INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)

# valid RFC 3339 whose UTC instant Python cannot hold (astimezone raised OverflowError), and their
# neighbours that it can but which leave no margin for date arithmetic
EDGES = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:01:00+00:11",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:00:00-23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1899-12-31T23:59:59Z",
    "9001-01-01T00:00:00Z",
]


@pytest.mark.parametrize("sent", EDGES)
def test_times_outside_1900_9000_are_a_validation_error(sent: str) -> None:
    with pytest.raises(ValidationError, match="between the years 1900 and 9000"):
        INSTANT.validate_python(sent)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a time zone offset"):
        INSTANT.validate_python("2026-12-03T10:00:00")


@pytest.mark.parametrize(
    "sent", ["1900-01-01T00:00:00+23:59", "9000-12-31T23:59:59-23:59", "2026-12-03T10:00:00+05:30"]
)
def test_times_inside_are_kept_as_sent_and_convert_with_a_margin(sent: str) -> None:
    got = INSTANT.validate_python(sent)
    assert got == datetime.fromisoformat(sent) and got.utcoffset() == datetime.fromisoformat(sent).utcoffset()
    assert (got.astimezone(UTC) + timedelta(days=366 * 100)).year > got.year


def test_bounds_without_margin_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no margin"):
        within_years(1, 9999)
    assert within_years(2000, 2999)(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))).year == 2026
