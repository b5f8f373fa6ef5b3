"""Self-describing, signed click ids: the link, the time and a nonce, with a MAC.

A partner hands the click id back with a conversion; the service verifies it without looking the
click up (forged -> 404) and reads the click's link and time from it (attribution window).

Layout (then base64url without padding): version (1 byte) | time in ms (6) | nonce (6) |
code (ASCII, the rest) | tag (12 bytes of HMAC-SHA256 over everything before it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from advocacy_sharing.domain import is_code_shaped

VERSION = 1
_TAG = 12
_FIXED = 1 + 6 + 6


@dataclass(frozen=True, slots=True)
class ClickRef:
    code: str
    at: datetime


class ClickIds:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"advocacy-click-id\x00" + secret.encode()).digest()

    def new(self, code: str, at_ms: int) -> str:
        body = bytes((VERSION,)) + at_ms.to_bytes(6, "big") + os.urandom(6) + code.encode("ascii")
        tag = hmac.digest(self._key, body, "sha256")[:_TAG]
        return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")

    def parse(self, click_id: str) -> ClickRef | None:
        """The click's link and time, or None when the id is malformed or its tag does not verify."""
        if not (20 <= len(click_id) <= 128):
            return None
        try:
            raw = base64.urlsafe_b64decode(click_id + "=" * (-len(click_id) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < _FIXED + 1 + _TAG or raw[0] != VERSION:
            return None
        body, tag = raw[:-_TAG], raw[-_TAG:]
        if not hmac.compare_digest(tag, hmac.digest(self._key, body, "sha256")[:_TAG]):
            return None
        try:
            code = body[_FIXED:].decode("ascii")
        except UnicodeDecodeError:
            return None
        if not is_code_shaped(code):
            return None
        at_ms = int.from_bytes(body[1:7], "big")
        return ClickRef(code, datetime.fromtimestamp(at_ms / 1000, UTC))
