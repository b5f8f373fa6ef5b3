import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.events import new_event
from advocacy_common.events.content import MemberUpdated
from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict
from advocacy_common.partner_feed import (
    RETRY_CAP,
    RETRY_FLOOR,
    partner_payload,
    retry_delay,
    sign,
    verify_signature,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def clicked(verdict: Verdict) -> ShareClicked:
    return ShareClicked(
        click_id="k1", share_id="s1", code="abcdefghij", content_id="c1", employee_id="alice", network="x",
        clicked_at=NOW, verdict=verdict, team="sales", device="mobile", browser="Safari", os="iOS",
        referrer_domain="t.co", country="DE",
    )  # fmt: skip


def test_only_counted_clicks_reach_partners_and_without_visitor_details() -> None:
    assert partner_payload(new_event("/s", "t", clicked(Verdict.bot))) is None
    payload = partner_payload(new_event("/s", "t", clicked(Verdict.counted)))
    assert payload is not None
    assert payload["click_id"] == "k1" and payload["employee_id"] == "alice" and payload["verdict"] == "counted"
    for private in ("device", "browser", "os", "referrer_domain", "country", "team"):
        assert private not in payload


def test_shares_lose_the_employee_name_and_internal_events_stay_internal() -> None:
    share = ShareCreated(
        share_id="s", employee_id="e", content_id="c", network="x", code="k", created_at=NOW, employee_name="Eve Secret"
    )
    payload = partner_payload(new_event("/s", "t", share))
    assert payload is not None and "employee_name" not in payload and payload["created_at"]
    member = MemberUpdated(employee_id="e", enrolled=True, updated_at=NOW, name="Eve")
    assert partner_payload(new_event("/c", "t", member)) is None


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"id": "1"}'
    sig = sign("s3cret", 1_700_000_000, body)
    assert verify_signature("s3cret", 1_700_000_000, body, sig, now=1_700_000_100)
    assert not verify_signature("s3cret", 1_700_000_000, body + b" ", sig, now=1_700_000_100)
    assert not verify_signature("other", 1_700_000_000, body, sig, now=1_700_000_100)
    assert not verify_signature("s3cret", 1_700_000_000, body, sig, now=1_700_000_400)


def test_backoff_grows_and_is_capped() -> None:
    waits = [retry_delay(n, highest).total_seconds() for n in range(1, 16)]
    assert waits == sorted(waits) and waits[0] == 2 and waits[-1] == 3600


# Retries wait a random time ("full jitter") between 1 s and 2^attempts s, capped at an hour.
def lowest(a: float, b: float) -> float:
    return a


def highest(a: float, b: float) -> float:
    return b


@pytest.mark.parametrize(("attempts", "longest"), [(1, 2), (2, 4), (3, 8), (11, 2048), (12, 3600), (40, 3600)])
def test_the_retry_ceiling_doubles_up_to_an_hour(attempts: int, longest: float) -> None:
    assert retry_delay(attempts, highest) == timedelta(seconds=longest)
    assert retry_delay(attempts, lowest) == timedelta(seconds=RETRY_FLOOR)


@given(st.integers(min_value=1, max_value=1000), st.integers())
def test_every_retry_wait_is_within_the_floor_and_the_cap(attempts: int, seed: int) -> None:
    wait = retry_delay(attempts, random.Random(seed).uniform).total_seconds()
    assert RETRY_FLOOR <= wait <= min(RETRY_CAP, 2**attempts)


def test_failures_that_happened_together_come_back_spread_out() -> None:
    waits = {retry_delay(6, random.Random(seed).uniform) for seed in range(50)}
    assert len(waits) == 50
