"""Gamification's stream tickets, on advocacy_common.tickets (issue 20: one ticket mechanism): a
minute long, never past the token they were issued for, for one tenant and person, and of their
purpose only (a share ticket opens no stream). Single use is the database's (integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from advocacy_common.auth import Principal
from advocacy_common.errors import Unauthorized
from advocacy_common.tickets import TicketSigner
from advocacy_gamification.adapters.stream import PURPOSE, TICKET_TTL, issue_ticket, ticket_holder

KEY = b"k" * 32
NOW = datetime(2026, 12, 3, 12, 0, 0, 500_000, tzinfo=UTC)
SIGN = TicketSigner(KEY, PURPOSE)


def test_a_ticket_names_its_person_and_lasts_a_minute() -> None:
    assert timedelta(seconds=60) == TICKET_TTL
    who = Principal("alice", "acme", frozenset({"employee"}), expires_at=NOW + timedelta(hours=1))
    ticket, expires = issue_ticket(SIGN, who, NOW)
    assert expires == (NOW + TICKET_TTL).replace(microsecond=0)
    holder = ticket_holder(SIGN, ticket, expires)  # good up to its whole second
    assert (holder.tenant_id, holder.sub, holder.expires_at) == ("acme", "alice", expires)
    assert holder.session_ends == (NOW + timedelta(hours=1)).replace(microsecond=0)
    with pytest.raises(Unauthorized, match="expired"):
        ticket_holder(SIGN, ticket, expires + timedelta(seconds=1))
    # each ticket has its own nonce: single use is recorded per ticket
    assert ticket_holder(SIGN, issue_ticket(SIGN, who, NOW)[0], NOW).nonce != holder.nonce


def test_a_ticket_ends_with_the_token_it_was_issued_for() -> None:
    who = Principal("bob", "acme", frozenset({"employee"}), expires_at=NOW + timedelta(seconds=30))
    ticket, _ = issue_ticket(SIGN, who, NOW)
    assert ticket_holder(SIGN, ticket, NOW + timedelta(seconds=29)).sub == "bob"
    with pytest.raises(Unauthorized, match="token"):
        ticket_holder(SIGN, ticket, NOW + timedelta(seconds=31))
    with pytest.raises(Unauthorized, match="expired"):
        issue_ticket(SIGN, Principal("bob", "acme", frozenset({"employee"}), expires_at=NOW), NOW)


def test_a_ticket_of_another_purpose_or_key_opens_no_stream() -> None:
    who = Principal("alice", "acme", frozenset({"employee"}))
    share = TicketSigner(KEY, "sharing.share").issue({"t": "acme", "s": "alice", "n": "x"}, NOW + TICKET_TTL)
    other_key = issue_ticket(TicketSigner(b"o" * 32, PURPOSE), who, NOW)[0]
    for bad in (share, other_key):
        with pytest.raises(Unauthorized, match="invalid"):
            ticket_holder(SIGN, bad, NOW)
