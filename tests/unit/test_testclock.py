"""The clock tests set from outside a process (advocacy_common.testclock), and its dev-mode guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from advocacy_common.testclock import MAX_BYTES, FileClock, set_clock
from advocacy_notifications.settings import NotificationsSettings

pytestmark = pytest.mark.unit


def _near_now(at: datetime) -> bool:
    return abs(at - datetime.now(UTC)) < timedelta(minutes=5)


def test_unset_or_missing_is_the_real_time(tmp_path: Path) -> None:
    assert _near_now(FileClock(None)())
    assert _near_now(FileClock(tmp_path / "absent")())


def test_the_file_sets_now_and_removing_it_restores_the_real_time(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    nine = datetime(2031, 5, 6, 9, 1, tzinfo=timezone(timedelta(hours=2)))
    clock = FileClock(path)
    set_clock(path, nine)
    assert clock() == nine
    set_clock(path, nine + timedelta(days=1))
    assert clock() == nine + timedelta(days=1)
    path.unlink()
    assert _near_now(clock())


@pytest.mark.parametrize("raw", ["", "not a time", "2031-05-06T09:00:00", "9" * (MAX_BYTES + 1), "\xff"])
def test_a_file_that_holds_no_instant_is_the_real_time(tmp_path: Path, raw: str) -> None:
    path = tmp_path / "clock"
    path.write_bytes(raw.encode("latin-1"))
    assert _near_now(FileClock(path)())


def test_a_naive_time_is_not_written() -> None:
    with pytest.raises(ValueError):
        set_clock("/nonexistent/clock", datetime(2031, 1, 1))


def test_the_clock_file_is_refused_outside_dev_mode(tmp_path: Path) -> None:
    assert NotificationsSettings(dev_mode=True, clock_file=str(tmp_path / "c")).clock_file
    with pytest.raises(ValueError, match="CLOCK_FILE"):
        NotificationsSettings(
            dev_mode=False,
            clock_file=str(tmp_path / "c"),
            database_url="postgresql+asyncpg://u:p@db/x",
            jwt_jwks_url="https://idp/jwks",
            jwt_issuer="https://idp/",
        )
