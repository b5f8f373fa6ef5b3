from datetime import UTC, datetime

from advocacy_common.events import new_event
from advocacy_common.events.content import MemberUpdated
from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict
from advocacy_common.partner_feed import (
    partner_payload,
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
