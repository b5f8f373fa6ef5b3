import base64
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from advocacy_sharing.adapters.clickid import ClickIds
from advocacy_sharing.domain import new_code


def test_round_trip_carries_link_and_time() -> None:
    ids = ClickIds("secret")
    code = new_code()
    at_ms = 1_767_225_600_123
    cid = ids.new(code, at_ms)
    ref = ids.parse(cid)
    assert ref is not None and ref.code == code
    assert ref.at == datetime.fromtimestamp(at_ms / 1000, UTC)
    assert cid != ids.new(code, at_ms)  # a nonce: two clicks in the same ms differ
    assert all(c.isalnum() or c in "-_" for c in cid)  # URL-safe


def test_other_secret_or_tampering_is_refused() -> None:
    ids = ClickIds("secret")
    cid = ids.new("AbCdEfGhIj", 1_767_225_600_000)
    assert ClickIds("other").parse(cid) is None
    raw = bytearray(base64.urlsafe_b64decode(cid + "=" * (-len(cid) % 4)))
    raw[14] ^= 1  # flip a bit of the code
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert ids.parse(forged) is None


@given(st.text(max_size=200))
def test_garbage_never_raises(s: str) -> None:
    assert ClickIds("secret").parse(s) is None
