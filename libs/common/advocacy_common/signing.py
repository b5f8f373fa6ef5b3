"""Comparing a MAC or signature someone sent with the one we computed: one way, for every caller.

``hmac.compare_digest`` on two ``str`` raises ``TypeError`` when either holds a non-ASCII character,
and a header or query value can hold anything (``X-Advocacy-Signature: é`` was a 500). Both sides are
compared as UTF-8 bytes, in constant time; what was sent is never trusted to be ASCII.
"""

from __future__ import annotations

import hmac


def same_mac(expected: str, given: str) -> bool:
    """True when ``given`` equals ``expected``; constant time for equal lengths, never raises."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
