"""Notifications' pure rules: when a digest is due, what window it covers, and the signed links."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from advocacy_notifications import domain
from advocacy_notifications.adapters import links
from advocacy_notifications.domain import Defaults, Frequency

pytestmark = pytest.mark.unit


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


def test_a_daily_slot_is_the_last_local_hour_passed() -> None:
    # 07:30 UTC is 08:30 in Berlin (winter): the 9 o'clock slot is yesterday's
    now = at("2026-12-03T07:30:00+00:00")
    slot = domain.latest_slot(now, Frequency.daily, zone="Europe/Berlin", hour=9, week_starts_on="monday")
    assert slot == at("2026-12-02T08:00:00+00:00")
    # 08:00 UTC exactly is 9 in Berlin: today's slot has come
    slot = domain.latest_slot(
        at("2026-12-03T08:00:00+00:00"), Frequency.daily, zone="Europe/Berlin", hour=9, week_starts_on="monday"
    )
    assert slot == at("2026-12-03T08:00:00+00:00")


def test_a_weekly_slot_falls_on_the_first_day_of_the_tenants_week() -> None:
    now = at("2026-12-03T12:00:00+00:00")  # a Thursday
    monday = domain.latest_slot(now, Frequency.weekly, zone="UTC", hour=9, week_starts_on="monday")
    sunday = domain.latest_slot(now, Frequency.weekly, zone="UTC", hour=9, week_starts_on="sunday")
    assert monday == at("2026-11-30T09:00:00+00:00")
    assert sunday == at("2026-11-29T09:00:00+00:00")
    assert domain.latest_slot(now, Frequency.off, zone="UTC", hour=9, week_starts_on="monday") is None


def test_a_slot_keeps_the_local_hour_across_a_dst_change() -> None:
    # New York: 9 local is 14:00 UTC in winter, 13:00 UTC in summer
    winter = domain.latest_slot(
        at("2026-01-10T15:00:00+00:00"), Frequency.daily, zone="America/New_York", hour=9, week_starts_on="monday"
    )
    summer = domain.latest_slot(
        at("2026-07-10T15:00:00+00:00"), Frequency.daily, zone="America/New_York", hour=9, week_starts_on="monday"
    )
    assert winter == at("2026-01-10T14:00:00+00:00")
    assert summer == at("2026-07-10T13:00:00+00:00")


def test_a_digest_is_due_once_per_slot_and_covers_since_the_last() -> None:
    slot = at("2026-12-03T09:00:00+00:00")
    assert domain.is_due(slot, None)
    assert not domain.is_due(slot, slot)
    assert domain.is_due(slot, slot - timedelta(days=1))
    assert domain.digest_window(slot, Frequency.daily, None) == (slot - timedelta(days=1), slot)
    last = slot - timedelta(days=3)  # the scheduler was down: nothing between two digests is skipped
    assert domain.digest_window(slot, Frequency.daily, last) == (last, slot)
    assert domain.digest_window(slot, Frequency.daily, slot - timedelta(days=90))[0] == slot - domain.MAX_LOOKBACK


def test_the_persons_choice_wins_over_the_tenants_default() -> None:
    d = Defaults(digest_frequency=Frequency.weekly)
    assert domain.effective_frequency(None, d) is Frequency.weekly
    assert domain.effective_frequency(Frequency.off, d) is Frequency.off


def test_retries_back_off_to_a_cap() -> None:
    base = timedelta(seconds=30)
    assert [domain.retry_delay(n, base).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert domain.retry_delay(1000, base) == domain.RETRY_CAP


@pytest.mark.parametrize(
    ("user_name", "address"),
    [
        ("ann@example.com", "ann@example.com"),
        ("ann", None),
        ("a@b@example.com", None),
        ("ann@localhost", None),
        ("ann <x>@example.com", None),
        (None, None),
        ("x" * 250 + "@example.com", None),
    ],
)
def test_only_an_address_is_written_to(user_name: str | None, address: str | None) -> None:
    assert domain.email_address(user_name) == address


def test_a_signed_link_reads_back_and_an_altered_one_does_not() -> None:
    key = b"k" * 32
    token = links.sign(key, {"t": "t1", "e": "ann", "c": "digest", "ch": "email"})
    assert links.read(key, token) == {"t": "t1", "e": "ann", "c": "digest", "ch": "email"}
    other = links.sign(key, {"t": "t1", "e": "bob", "c": "digest", "ch": "email"})
    forged = token.split(".")[0] + "." + other.split(".")[1] + "." + token.split(".")[2]
    for bad in (forged, token + "x", "u1..", "", "é" * 10, links.sign(b"j" * 32, {"t": "t1"}), "x" * 5000):
        with pytest.raises(links.BadLink):
            links.read(key, bad)
