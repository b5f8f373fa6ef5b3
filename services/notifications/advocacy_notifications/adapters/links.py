"""Signed links in messages (unsubscribe): what a link acts on, signed with the service's link key,
so it works without logging in and cannot be altered. A link does not expire: RFC 8058 asks that an
unsubscribe link keep working, and acting on one twice changes nothing.

The key: ``NOTIFICATIONS_LINK_SECRET`` when set, else the random value migration 0001 stored in
``service_secrets`` (every replica reads the same).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.signing import same_mac
from advocacy_common.tombstones import SERVICE_SECRETS

KEY_NAME = "link_key"
_VERSION = "u1"
MAX_LINK_LENGTH = 1024


class BadLink(ValueError):
    """A link that was not made by this service (or was altered)."""


class LinkKey:
    """The link key: configured, or read once from the database."""

    def __init__(self) -> None:
        self._configured: bytes | None = None
        self._stored: bytes | None = None

    def configure(self, secret: str | None) -> None:
        self._configured = _derive(secret) if secret else None

    async def get(self, session: AsyncSession) -> bytes:
        if self._configured is not None:
            return self._configured
        if self._stored is None:
            value = await session.scalar(sa.select(SERVICE_SECRETS.c.value).where(SERVICE_SECRETS.c.name == KEY_NAME))
            if value is None:
                raise RuntimeError("no link key in service_secrets: run the service's migrations")
            self._stored = _derive(str(value))
        return self._stored


LINK_KEY = LinkKey()


class PublicBase:
    """Where the links in a message point (``NOTIFICATIONS_PUBLIC_BASE_URL``), set at start: the
    consumer composes notices and has no settings of its own to read it from."""

    def __init__(self, url: str = "http://127.0.0.1:8005") -> None:
        self._url = url

    def configure(self, url: str) -> None:
        self._url = url

    def get(self) -> str:
        return self._url


PUBLIC_BASE = PublicBase()


def _derive(secret: str) -> bytes:
    return hashlib.sha256(b"advocacy-notification-links\x00" + secret.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, f"{_VERSION}.{body}".encode(), hashlib.sha256).digest())


def sign(key: bytes, claims: Mapping[str, str]) -> str:
    body = _b64(json.dumps(dict(claims), separators=(",", ":"), sort_keys=True).encode())
    return f"{_VERSION}.{body}.{_mac(key, body)}"


def read(key: bytes, token: str) -> dict[str, str]:
    """The claims of a link this service signed; :class:`BadLink` for anything else."""
    if len(token) > MAX_LINK_LENGTH:
        raise BadLink("link too long")
    version, _, rest = token.partition(".")
    body, _, mac = rest.partition(".")
    if version != _VERSION or not body or not mac or not same_mac(_mac(key, body), mac):
        raise BadLink("this link was not made by us or was altered")
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError as e:
        raise BadLink("unreadable link") from e
    if not isinstance(claims, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in claims.items()):
        raise BadLink("unreadable link")
    return claims
