"""Partner webhooks, the pure rules: Standard Webhooks signatures, the retry schedule, Retry-After.

No I/O and no clock of its own: every function that needs the time takes ``now``, every one that
needs chance takes ``rand`` (``random.uniform`` in production, a test's function in tests). The
deliverer that applies these rules is :mod:`advocacy_common.partner_feed`.

Signatures follow https://www.standardwebhooks.com (signed with the reference ``standardwebhooks``
library): headers ``webhook-id`` (the event's id, the same on every attempt), ``webhook-timestamp``
(unix seconds) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
one per valid secret, space-separated, so a receiver holding either the old or the new secret
verifies a delivery during a rotation's overlap. Secrets are ``whsec_`` + base64 of 32 random bytes.

The scheme before it (``legacy``: ``X-Advocacy-Signature: sha256=<hex HMAC of "{ts}.{body}">``) is
deprecated and keeps working until :data:`LEGACY_SCHEME_SUNSET` (docs/partners.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from standardwebhooks.webhooks import Webhook

from advocacy_common.events import REGISTRY

SignatureScheme = Literal["standard", "legacy"]
SCHEMES: tuple[SignatureScheme, ...] = ("standard", "legacy")
# The old scheme keeps working for endpoints that ask for it (and for the tenant-wide
# ``partner_webhook_url``) until this date; docs/partners.md announces it. After it, the code that
# signs ``legacy`` may be removed (a later release), and such endpoints get ``standard``.
LEGACY_SCHEME_SUNSET = date(2027, 6, 30)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32

# The retry schedule. After failed attempt n (1-based), the next waits a random time between
# RETRY_FLOOR and RETRY_SCHEDULE[n-1] ("full jitter": a thousand deliveries that failed together,
# say while an endpoint was down, come back spread over the whole step, not in step). The steps grow
# from seconds (a blip) to a day (an endpoint down over a weekend); their sum is 6.3 days, so the
# expected time from the first attempt to the last is half of it, about 3.2 days (at most 6.3), over
# MAX_ATTEMPTS = 15 attempts. Then the delivery is ``failed``; an admin can redeliver or replay it.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=16),
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
RETRY_FLOOR = timedelta(seconds=1)
# A partner may ask for a longer wait with ``Retry-After`` (seconds or an HTTP date), honoured up to
# this: a partner cannot park its deliveries beyond the schedule's longest step.
RETRY_AFTER_CAP = timedelta(hours=24)
# Retry-After values longer than this many characters are not parsed (a hostile header is bounded).
_RETRY_AFTER_MAX_CHARS = 64


def partner_event_types() -> frozenset[str]:
    """The event types partners may receive: the registry's partner-visible ones."""
    return frozenset(t for t, model in REGISTRY.items() if model.PARTNER_VISIBLE)


def retry_delay(attempts: int, rand: Callable[[float, float], float]) -> timedelta:
    """The wait after ``attempts`` failed attempts, by the schedule with full jitter."""
    step = RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1]
    return timedelta(seconds=rand(RETRY_FLOOR.total_seconds(), step.total_seconds()))


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header as a wait (0 .. RETRY_AFTER_CAP), or None when absent or unreadable."""
    if not value or len(value) > _RETRY_AFTER_MAX_CHARS:
        return None
    value = value.strip()
    wait: timedelta
    if value.isascii() and value.isdigit():
        wait = timedelta(seconds=min(int(value), int(RETRY_AFTER_CAP.total_seconds())))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when - now
    return max(timedelta(0), min(wait, RETRY_AFTER_CAP))


def next_wait(attempts: int, asked: timedelta | None, rand: Callable[[float, float], float]) -> timedelta | None:
    """After a failed attempt: how long until the next, or None when the attempts are spent.
    A partner's ``Retry-After`` (already bounded) lengthens the wait, never shortens it."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait = retry_delay(attempts, rand)
    return max(wait, asked) if asked is not None else wait


def disables_endpoint(status_code: int | None) -> bool:
    """410 Gone: the partner says the endpoint is gone for good; we stop until an admin re-enables it."""
    return status_code == 410


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def standard_headers(message_id: str, timestamp: datetime, body: bytes, secrets_: Sequence[str]) -> dict[str, str]:
    """The Standard Webhooks headers, one ``v1,`` signature per secret (newest first)."""
    data = body.decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(message_id, timestamp, data) for s in secrets_),
    }


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def legacy_headers(event_id: str, timestamp: datetime, body: bytes, secret: str) -> dict[str, str]:
    """The deprecated scheme's headers (until LEGACY_SCHEME_SUNSET)."""
    ts = int(timestamp.timestamp())
    return {
        "x-advocacy-timestamp": str(ts),
        "x-advocacy-signature": legacy_signature(secret, ts, body),
        "x-advocacy-event-id": event_id,
    }


def valid_secrets(secrets_: Sequence[tuple[str, datetime | None]], now: datetime) -> list[str]:
    """Of an endpoint's (secret, expires_at) newest first, those still valid: the current one (no
    expiry) and any previous one whose rotation overlap has not ended."""
    return [s for s, expires in secrets_ if expires is None or expires > now]
