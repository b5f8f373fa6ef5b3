"""Notifications' scheduled notices, pure rules: quiet hours (a DST day, midnight wrap), the nudge's
periods of silence, and when an item is close enough to expiry to warn about."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advocacy_notifications import domain
from advocacy_notifications.adapters import overrides, templates
from advocacy_notifications.domain import QuietHours

pytestmark = pytest.mark.unit

NIGHT = QuietHours(22, 7)  # wraps midnight


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


def test_outside_quiet_hours_a_message_goes_at_once() -> None:
    noon = at("2026-12-03T12:00:00+00:00")  # 13:00 in Berlin
    assert domain.delivery_time(noon, zone="Europe/Berlin", quiet=NIGHT) == noon
    assert domain.delivery_time(noon, zone="Europe/Berlin", quiet=None) == noon
    # 06:00 UTC is 07:00 in Berlin: the end hour itself is not quiet
    seven = at("2026-12-03T06:00:00+00:00")
    assert domain.delivery_time(seven, zone="Europe/Berlin", quiet=NIGHT) == seven


def test_quiet_hours_that_wrap_midnight_hold_a_message_until_the_morning() -> None:
    # 23:30 in Berlin (22:30 UTC, winter): held until 07:00 the next day, 06:00 UTC
    late = at("2026-12-03T22:30:00+00:00")
    assert domain.delivery_time(late, zone="Europe/Berlin", quiet=NIGHT) == at("2026-12-04T06:00:00+00:00")
    # 02:00 in Berlin, after midnight: the same morning
    small_hours = at("2026-12-04T01:00:00+00:00")
    assert domain.delivery_time(small_hours, zone="Europe/Berlin", quiet=NIGHT) == at("2026-12-04T06:00:00+00:00")
    # exactly at the start hour: quiet
    ten = at("2026-12-03T21:00:00+00:00")
    assert domain.delivery_time(ten, zone="Europe/Berlin", quiet=NIGHT) == at("2026-12-04T06:00:00+00:00")


def test_quiet_hours_within_a_day() -> None:
    lunch = QuietHours(12, 14)
    # 12:30 in New York (17:30 UTC, winter): held until 14:00 local, 19:00 UTC
    now = at("2026-12-03T17:30:00+00:00")
    assert domain.delivery_time(now, zone="America/New_York", quiet=lunch) == at("2026-12-03T19:00:00+00:00")
    before = at("2026-12-03T16:59:00+00:00")
    assert domain.delivery_time(before, zone="America/New_York", quiet=lunch) == before


def test_quiet_hours_end_at_the_local_hour_on_the_night_the_clocks_change() -> None:
    # Berlin springs forward on 2026-03-29 at 02:00 (01:00 UTC): 23:00 on the 28th is 22:00 UTC
    # (+01:00), 07:00 on the 29th is 05:00 UTC (+02:00). Adding 8 hours would say 06:00 UTC.
    spring = at("2026-03-28T22:00:00+00:00")
    assert domain.delivery_time(spring, zone="Europe/Berlin", quiet=NIGHT) == at("2026-03-29T05:00:00+00:00")
    # falls back on 2026-10-25 at 03:00 (01:00 UTC): 23:00 on the 24th is 21:00 UTC, 07:00 on the
    # 25th is 06:00 UTC (+01:00)
    autumn = at("2026-10-24T21:00:00+00:00")
    assert domain.delivery_time(autumn, zone="Europe/Berlin", quiet=NIGHT) == at("2026-10-25T06:00:00+00:00")


def test_an_end_hour_in_the_dst_gap_is_the_moment_the_clocks_jump() -> None:
    # quiet until 02:00, which does not exist in Berlin on 2026-03-29: delivered at 03:00 CEST
    # (01:00 UTC), not before it, and not an hour late
    quiet = QuietHours(22, 2)
    now = at("2026-03-28T23:30:00+00:00")  # 00:30 local (+01:00)
    got = domain.delivery_time(now, zone="Europe/Berlin", quiet=quiet)
    assert got == at("2026-03-29T01:00:00+00:00")
    assert got > now


def test_the_delivery_time_keeps_the_composers_time_zone() -> None:
    late = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)
    got = domain.delivery_time(late, zone="Europe/Berlin", quiet=NIGHT)
    assert got.tzinfo is UTC and got == datetime(2026, 12, 4, 6, tzinfo=UTC)


@pytest.mark.parametrize(("start", "end"), [(-1, 7), (22, 24), (5, 5), (0, 99)])
def test_quiet_hours_refuse_what_is_not_an_hour_or_an_empty_range(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        QuietHours(start, end)


def test_a_nudge_comes_once_per_period_of_silence() -> None:
    last_share = at("2026-11-01T10:00:00+00:00")
    assert domain.nudge_period(last_share + timedelta(days=29, hours=23), last_share, 30) is None
    first = domain.nudge_period(last_share + timedelta(days=30), last_share, 30)
    assert first == last_share + timedelta(days=30)
    # later passes in the same period: the same period (so the same key: nothing new)
    assert domain.nudge_period(last_share + timedelta(days=45), last_share, 30) == first
    assert domain.nudge_key("ann", first) == domain.nudge_key("ann", last_share + timedelta(days=30))
    # still silent a period later: the next one
    assert domain.nudge_period(last_share + timedelta(days=61), last_share, 30) == last_share + timedelta(days=60)
    # 0 turns nudges off
    assert domain.nudge_period(last_share + timedelta(days=400), last_share, 0) is None


def test_an_item_is_expiring_within_the_notice_and_not_once_expired() -> None:
    now = at("2026-12-03T12:00:00+00:00")
    day = timedelta(hours=24)
    assert domain.expiring_soon(now, now + timedelta(hours=23), day)
    assert domain.expiring_soon(now, now + day, day)
    assert not domain.expiring_soon(now, now + day + timedelta(seconds=1), day)
    assert not domain.expiring_soon(now, now, day)
    assert not domain.expiring_soon(now, None, day)
    assert domain.expiring_key("ann", "c1") == "expiring:ann:c1"


@pytest.mark.parametrize("language", templates.LOCALES)
@pytest.mark.parametrize("name", ["nudge", "expiring"])
def test_the_notices_built_in_wording_reads_only_what_a_tenants_override_may(name: str, language: str) -> None:
    # an override of the nudge or the expiry notice is checked against the same sample
    for part, suffix in (("subject", "subject.j2"), ("text", "txt.j2"), ("html", "html.j2")):
        prefix = "" if language == templates.DEFAULT_LOCALE else f"{language}/"
        source = templates._LOADER.get_source(templates._TEXT, f"{prefix}{name}.{suffix}")[0]
        overrides.validate({part: source}, templates.sample(name, language))


def test_the_expiry_notice_speaks_the_readers_language_and_the_tenants_time() -> None:
    ctx = {**templates.sample("expiring", "de"), "time_zone": "Europe/Berlin"}  # 09:00 UTC: 10:00 in Berlin
    de = templates.render("expiring", ctx, "de")
    assert de.subject == "Letzte Gelegenheit zum Teilen: Our new product line"
    assert "läuft am" in de.text and "10:00" in de.text
    en = templates.render("nudge", templates.sample("nudge"), "en")
    assert en.subject == "It has been 30 days since your last share"


def test_mail_is_queued_in_one_place_so_quiet_hours_hold_every_message() -> None:
    # features/mail.queue applies the quiet hours: nothing else writes a row of `messages`
    package = Path(domain.__file__).parent
    writers = [
        str(p.relative_to(package))
        for p in sorted(package.rglob("*.py"))
        if "migrations" not in p.parts
        and p.name != "mail.py"
        and re.search(r"table_of\(Message\)|insert\(Message\b|(?<!class )\bMessage\(", p.read_text())
    ]
    assert writers == []
