"""Points in time a caller sends: ``Instant``, the one type of every date-time field and query
parameter of every service.

An ``Instant`` carries its offset (RFC 3339; a naive time is ambiguous) and its year lies in
[:data:`FIRST_YEAR`, :data:`LAST_YEAR`]. ``0001-01-01T00:00:00+01:00`` and
``9999-12-31T23:59:59-01:00`` are valid RFC 3339, but their UTC instants lie outside the years
Python's ``datetime`` can hold: turning them into UTC -- our code does, a comparison with a time at
another offset does, asyncpg does when it binds a ``timestamptz`` -- raised ``OverflowError``, a
500 on ten routes of three services that ``make fuzz`` led to (docs/reliability.md). The bounds
are checked on the time as sent, before any conversion; they leave centuries of margin for the date
arithmetic the services do (windows, expiries, retention) and hold every plausible programme date.
The value is kept as sent, offset included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

#: Years an Instant may have. An offset moves a time by less than a day, so the UTC instant of any
#: accepted time is far inside ``datetime``'s years 1-9999, and so is a year added to or taken from it.
FIRST_YEAR = 1900
LAST_YEAR = 9000


def within_years(first: int, last: int) -> Callable[[datetime], datetime]:
    """A validator: an aware time of the years ``first``-``last`` (``first`` >= 2, ``last`` <= 9998,
    so the check itself never converts a time that cannot be converted)."""
    if not 2 <= first <= last <= 9998:
        raise ValueError(f"years {first}-{last} leave no margin inside datetime's 1-9999")

    def check(v: datetime) -> datetime:
        if v.utcoffset() is None:
            raise ValueError("needs a time zone offset (RFC 3339)")
        if not first <= v.year <= last:
            raise ValueError(f"must be between the years {first} and {last}")
        return v

    return check


Instant = Annotated[datetime, AfterValidator(within_years(FIRST_YEAR, LAST_YEAR))]
