"""Short-lived signed tickets: a browser-safe credential for one narrow action (issue 20).

A front-end must not hold a person's bearer token in JavaScript; what it may hold is a ticket the
API issued to that person (with their token, through the backend-for-frontend) that allows one thing
for a minute: ``v1.<payload>.<HMAC-SHA256>``, the payload a small JSON object with its expiry in
``e`` (epoch seconds). Any replica verifies it with the service's shared key; single use is the
caller's business (it records the ticket's nonce where the action is recorded).

Pure: no I/O; the clock is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from advocacy_common.errors import Unauthorized

#: A ticket is a few hundred characters; longer is not one of ours (refused before any work).
MAX_TICKET_LENGTH = 2048
MIN_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TicketSigner:
    """Signs and verifies tickets of one purpose (``purpose`` separates keys: a ticket of one kind is
    never valid as another)."""

    def __init__(self, key: bytes, purpose: str) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a ticket key must be at least {MIN_KEY_BYTES} bytes")
        self._key = hmac.new(key, f"advocacy-ticket:{purpose}".encode(), hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, f"v1.{payload}".encode(), hashlib.sha256).digest())

    def issue(self, claims: dict[str, Any], expires_at: datetime) -> str:
        payload = _b64(json.dumps({**claims, "e": int(expires_at.timestamp())}, separators=(",", ":")).encode())
        return f"v1.{payload}.{self._mac(payload)}"

    def verify(self, ticket: str, now: datetime) -> dict[str, Any]:
        """The claims of a genuine, unexpired ticket; Unauthorized (401) otherwise."""
        if not isinstance(ticket, str) or len(ticket) > MAX_TICKET_LENGTH:
            raise Unauthorized("malformed ticket")
        parts = ticket.split(".")
        if len(parts) != 3 or parts[0] != "v1":
            raise Unauthorized("malformed ticket")
        if not hmac.compare_digest(self._mac(parts[1]).encode(), parts[2].encode()):
            raise Unauthorized("invalid ticket")
        try:
            claims = json.loads(_unb64(parts[1]))
            expires = int(claims["e"])
        except (ValueError, KeyError, TypeError, RecursionError, OverflowError) as e:  # 1e400: int(inf)
            raise Unauthorized("malformed ticket") from e
        if not isinstance(claims, dict):
            raise Unauthorized("malformed ticket")
        if now.timestamp() > expires:
            raise Unauthorized("ticket expired: ask for a new one")
        return claims
