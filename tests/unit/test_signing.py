"""MACs and signatures sent to us are compared without trusting them to be ASCII."""

from __future__ import annotations

import hmac

import pytest

from advocacy_common.signing import same_mac

pytestmark = pytest.mark.unit

SENT = ["é" * 8, "\U0001f600", "\ud800", "", "abc\x00", "ABCDEF", "abcdeF"]


def test_the_standard_comparison_raises_on_what_a_client_may_send() -> None:
    """Why the services answered 500 for a non-ASCII X-Advocacy-Signature or stream ticket."""
    with pytest.raises(TypeError):
        hmac.compare_digest("abcdef", "é" * 6)


@pytest.mark.parametrize("given", SENT)
def test_anything_else_sent_is_a_plain_no(given: str) -> None:
    assert same_mac("abcdef", given) is False


def test_the_right_mac_is_a_yes() -> None:
    assert same_mac("abcdef", "abcdef") is True
