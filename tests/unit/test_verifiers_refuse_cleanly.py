"""Every verifier of something a caller sends (conversion signatures and their timestamps, click ids,
stream tickets) answers "no" on malformed input: a 401 (Unauthorized) or "not valid", never another
exception, which the service would turn into a 500 (issue 13, item 4)."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.errors import Unauthorized
from advocacy_common.tickets import TicketSigner
from advocacy_gamification.adapters.stream import PURPOSE, ticket_holder
from advocacy_sharing.adapters.clickid import ClickIds
from advocacy_sharing.features.conversions import check_timestamp, signature, signature_matches
from advocacy_sharing.features.links import refusal
from advocacy_sharing.features.partners import PARTNER_ID

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
# What a header can carry (Starlette decodes headers as latin-1), and what a query can (any text).
HEADER = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=600)
ANY_TEXT = st.text(max_size=300)


@given(HEADER)
def test_a_timestamp_is_unix_seconds_or_a_401(value: str) -> None:
    try:
        check_timestamp(value, NOW, 300)
    except Unauthorized:
        return
    assert value.isdigit() and abs(int(value) - NOW.timestamp()) <= 300


@pytest.mark.parametrize("value", ["9" * 400, "9" * 20, "١٧٦٤٧٦٣٢٠٠", "-1", "+1764763200", " 1764763200", "1e9", ""])
def test_known_malformed_timestamps_are_401(value: str) -> None:
    with pytest.raises(Unauthorized):  # "9" * 400 was an OverflowError: int too large for a float
        check_timestamp(value, NOW, 300)


@given(HEADER)
def test_a_signature_matches_or_not_never_raises(given_sig: str) -> None:
    assert signature_matches([("p", "secret")], "1764763200", b"{}", given_sig) is None


def test_the_secret_that_verifies_names_the_partner() -> None:
    sig = signature("s-b", "1", b"{}")
    assert signature_matches([("a", "s-a"), ("b", "s-b"), ("c", "s-c")], "1", b"{}", sig) == "b"
    assert signature_matches([("a", "s-a")], "1", b"{}", sig) is None
    assert signature_matches([("b", "s-b")], "1", b"{}", sig + "0" * 200) is None  # over-long: no HMAC


@given(ANY_TEXT)
def test_a_click_id_parses_or_is_none(value: str) -> None:
    assert ClickIds("secret").parse(value) is None or value.isascii()


def test_a_click_id_past_the_calendar_is_none_not_a_crash() -> None:
    ids = ClickIds("secret")
    assert ids.parse(ids.new("AbCdEfGhIj", 2**48 - 1)) is None  # year 10889: fromtimestamp raised


STREAM = TicketSigner(b"k" * 32, PURPOSE)


@given(ANY_TEXT)
def test_a_stream_ticket_verifies_or_is_a_401(value: str) -> None:
    with pytest.raises(Unauthorized):
        ticket_holder(STREAM, value, NOW)


def _signed(payload: bytes) -> str:
    # what a holder of the key could sign (advocacy_common.tickets' MAC over "v1.<payload>")
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"v1.{body}.{STREAM._mac(body)}"


@given(st.binary(max_size=200))
def test_a_validly_signed_ticket_with_a_bad_payload_is_a_401(payload: bytes) -> None:
    with pytest.raises(Unauthorized):
        ticket_holder(STREAM, _signed(payload), NOW)


# JSON a signed payload may hold, as written: the stream ticket's claims with any values, huge
# numbers included (1e400 parses as infinity, and int() of it raised OverflowError: a 500).
JSON_VALUE = st.one_of(
    st.sampled_from(["1e400", "-1e400", "1e300", "1.5", str(2**70), "-1", "null", "true", "[]", "{}"]),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.text(max_size=20).map(json.dumps),
)


@given(st.dictionaries(st.sampled_from(["t", "s", "n", "e", "x"]), JSON_VALUE))
def test_a_validly_signed_ticket_with_odd_claims_is_a_holder_or_a_401(claims: dict[str, str]) -> None:
    raw = "{" + ",".join(f'"{k}":{v}' for k, v in claims.items()) + "}"
    with contextlib.suppress(Unauthorized):
        ticket_holder(STREAM, _signed(raw.encode()), NOW)


def test_partner_ids_are_plain_ascii() -> None:
    assert PARTNER_ID.fullmatch("acme-crm.eu_1")
    for bad in ("", "Acme", "-x", "a b", "é", "a" * 64, "a\x00"):
        assert not PARTNER_ID.fullmatch(bad), bad


def test_refusal_says_why_a_stored_url_no_longer_redirects() -> None:
    assert refusal("https://example.com/a") is None
    assert "backslash" in (refusal("https://good.example\\@evil.example/x") or "")
    assert "credentials" in (refusal("https://u:p@example.com/") or "")
    assert "control" in (refusal("https://exa\tmple.com/") or "")
