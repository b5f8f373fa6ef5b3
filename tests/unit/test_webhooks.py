"""The pure webhook rules: Standard Webhooks signatures (checked with the reference library), the
retry schedule with full jitter, Retry-After, and which event types partners may filter on."""

from __future__ import annotations

import hmac
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from advocacy_common.events import REGISTRY
from advocacy_common.webhooks import (
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP,
    RETRY_FLOOR,
    RETRY_SCHEDULE,
    disables_endpoint,
    legacy_headers,
    legacy_signature,
    new_secret,
    next_wait,
    partner_event_types,
    retry_after,
    retry_delay,
    standard_headers,
    valid_secrets,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def lowest(a: float, b: float) -> float:
    return a


def highest(a: float, b: float) -> float:
    return b


def test_a_receiver_verifies_with_the_reference_library_and_either_secret_during_an_overlap() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_") and old != new
    now = datetime.now(UTC)
    body = b'{"id":"e1","data":{"x":"\xc3\xa4"}}'
    headers = standard_headers("e1", now, body, [new, old])
    assert headers["webhook-id"] == "e1" and headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert [s[:3] for s in headers["webhook-signature"].split(" ")] == ["v1,", "v1,"]
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"id": "e1", "data": {"x": "ä"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body + b" ", headers)
    only_new = standard_headers("e1", now, body, [new])
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, only_new)


def test_the_legacy_scheme_is_unchanged() -> None:
    headers = legacy_headers("e1", datetime.fromtimestamp(1_700_000_000, UTC), b"{}", "s3cret")
    assert headers == {
        "x-advocacy-timestamp": "1700000000",
        "x-advocacy-signature": legacy_signature("s3cret", 1_700_000_000, b"{}"),
        "x-advocacy-event-id": "e1",
    }
    # HMAC-SHA256 of "1700000000.{}" under "s3cret", as docs/partners.md has described it
    assert headers["x-advocacy-signature"] == ("sha256=" + hmac.new(b"s3cret", b"1700000000.{}", "sha256").hexdigest())


def test_the_schedule_spans_about_three_days_on_average() -> None:
    total = sum(RETRY_SCHEDULE, timedelta())
    mean = sum(((s + RETRY_FLOOR) / 2 for s in RETRY_SCHEDULE), timedelta())
    assert timedelta(days=6) < total < timedelta(days=6.5)
    assert timedelta(days=3) < mean < timedelta(days=3.5)
    assert MAX_ATTEMPTS == len(RETRY_SCHEDULE) + 1 == 15
    assert list(RETRY_SCHEDULE) == sorted(RETRY_SCHEDULE)


@pytest.mark.parametrize(("attempts", "step"), [(1, 10), (2, 60), (4, 1800), (9, 16 * 3600), (14, 86400), (40, 86400)])
def test_each_wait_is_full_jitter_over_its_step(attempts: int, step: int) -> None:
    assert retry_delay(attempts, highest) == timedelta(seconds=step)
    assert retry_delay(attempts, lowest) == RETRY_FLOOR


@given(st.integers(min_value=1, max_value=MAX_ATTEMPTS - 1), st.integers())
def test_every_wait_is_within_the_floor_and_its_step(attempts: int, seed: int) -> None:
    wait = retry_delay(attempts, random.Random(seed).uniform)
    assert RETRY_FLOOR <= wait <= RETRY_SCHEDULE[attempts - 1]


def test_failures_that_happened_together_come_back_spread_out() -> None:
    waits = {retry_delay(6, random.Random(seed).uniform) for seed in range(50)}
    assert len(waits) == 50


def test_the_attempts_end_after_the_last_step() -> None:
    assert next_wait(MAX_ATTEMPTS - 1, None, highest) == RETRY_SCHEDULE[-1]
    assert next_wait(MAX_ATTEMPTS, None, highest) is None
    assert next_wait(MAX_ATTEMPTS, timedelta(seconds=5), highest) is None


def test_retry_after_lengthens_a_wait_never_shortens_it() -> None:
    assert next_wait(1, timedelta(minutes=5), highest) == timedelta(minutes=5)
    assert next_wait(5, timedelta(seconds=3), highest) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("120", timedelta(seconds=120)),
        (" 7 ", timedelta(seconds=7)),
        ("0", timedelta(0)),
        ("99999999999999999999", RETRY_AFTER_CAP),  # bounded
        ("Thu, 03 Dec 2026 12:10:00 GMT", timedelta(minutes=10)),
        ("Thu, 03 Dec 2026 11:00:00 GMT", timedelta(0)),  # in the past
        ("Fri, 01 Jan 2100 00:00:00 GMT", RETRY_AFTER_CAP),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("\uff11\uff12", None),  # non-ASCII (fullwidth) digits
        ("1" * 65, None),  # too long to parse
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_bounded(header: str | None, wait: timedelta | None) -> None:
    assert retry_after(header, NOW) == wait


@given(st.text(max_size=80))
def test_any_retry_after_header_is_harmless(header: str) -> None:
    wait = retry_after(header, NOW)
    assert wait is None or timedelta(0) <= wait <= RETRY_AFTER_CAP


def test_only_410_disables() -> None:
    assert disables_endpoint(410)
    assert not any(disables_endpoint(c) for c in (None, 200, 404, 429, 500, 503))


def test_a_previous_secret_signs_until_its_overlap_ends() -> None:
    stored = [("new", None), ("old", NOW + timedelta(hours=1)), ("older", NOW - timedelta(seconds=1))]
    assert valid_secrets(stored, NOW) == ["new", "old"]
    assert valid_secrets(stored, NOW + timedelta(hours=1)) == ["new"]


def test_partners_filter_on_the_partner_visible_types_only() -> None:
    types = partner_event_types()
    assert "io.advocacy.share.clicked.v1" in types and "io.advocacy.member.erased.v1" in types
    assert "io.advocacy.member.updated.v1" not in types  # internal (names, teams)
    assert types == {t for t, m in REGISTRY.items() if m.PARTNER_VISIBLE}
