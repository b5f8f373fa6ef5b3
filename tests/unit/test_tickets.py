"""Short-lived signed tickets (advocacy_common.tickets): genuine, unexpired and of their purpose only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from advocacy_common.errors import Unauthorized
from advocacy_common.tickets import MAX_TICKET_LENGTH, TicketSigner

KEY = b"k" * 32
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_ticket_carries_its_claims_until_it_expires() -> None:
    signer = TicketSigner(KEY, "sharing.share")
    ticket = signer.issue({"s": "alice", "c": "c1"}, NOW + timedelta(seconds=60))
    assert signer.verify(ticket, NOW + timedelta(seconds=60)) == {
        "s": "alice",
        "c": "c1",
        "e": int(NOW.timestamp()) + 60,
    }
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(ticket, NOW + timedelta(seconds=61))


def test_an_altered_foreign_or_malformed_ticket_is_refused() -> None:
    signer = TicketSigner(KEY, "sharing.share")
    ticket = signer.issue({"s": "alice"}, NOW + timedelta(seconds=60))
    version, payload, mac = ticket.split(".")
    forged_payload = signer.issue({"s": "mallory"}, NOW + timedelta(seconds=60)).split(".")[1]
    for bad in (
        f"{version}.{forged_payload}.{mac}",  # another payload under this MAC
        TicketSigner(KEY, "gamification.stream").issue({"s": "alice"}, NOW + timedelta(seconds=60)),  # purpose
        TicketSigner(b"o" * 32, "sharing.share").issue({"s": "alice"}, NOW + timedelta(seconds=60)),  # key
        f"v2.{payload}.{mac}",
        "v1.e30",
        "",
        "v1." + "A" * MAX_TICKET_LENGTH + ".x",
    ):
        with pytest.raises(Unauthorized):
            signer.verify(bad, NOW)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError):
        TicketSigner(b"short", "sharing.share")
