"""Keyed tombstones for erased people (issue 13: an unsalted SHA-256 of tenant and id was reversible
with a dictionary of likely ids).

A tombstone is ``k1:`` + HMAC-SHA256(tenant key, employee id), the tenant key being
HMAC-SHA256(service key, "tenant\\0" + tenant id). The service key is ``GAMIFICATION_PSEUDONYM_SECRET``
when it is set, else the random key migration 0007 stored in ``service_secrets``. It must never
change: tombstones made under another key are not found, and events about those people would count
again. Tombstones written before 0007 are plain SHA-256 hashes; :func:`forms` gives both.
"""

from __future__ import annotations

import hashlib
import hmac

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_gamification.db import SECRETS

KEY_NAME = "pseudonym_key"
KEYED = "k1:"

_configured: bytes | None = None
_stored: bytes | None = None


def configure(secret: str | None) -> None:
    """Use a configured secret (from settings) instead of the stored key; None: the stored key."""
    global _configured
    _configured = hashlib.sha256(b"advocacy-pseudonym\x00" + secret.encode()).digest() if secret else None


async def service_key(session: AsyncSession) -> bytes:
    global _stored
    if _configured is not None:
        return _configured
    if _stored is None:
        value = await session.scalar(sa.select(SECRETS.c.value).where(SECRETS.c.name == KEY_NAME))
        if value is None:
            raise RuntimeError("no pseudonym key: run `python -m advocacy_gamification migrate` (revision 0007)")
        _stored = hashlib.sha256(b"advocacy-pseudonym\x00" + str(value).encode()).digest()
    return _stored


def tombstone(key: bytes, tenant_id: str, employee_id: str) -> str:
    tenant_key = hmac.new(key, b"tenant\x00" + tenant_id.encode(), hashlib.sha256).digest()
    return KEYED + hmac.new(tenant_key, employee_id.encode(), hashlib.sha256).hexdigest()


def legacy(tenant_id: str, employee_id: str) -> str:
    """The unkeyed form of tombstones written before revision 0007."""
    return hashlib.sha256(f"{tenant_id}\x00{employee_id}".encode()).hexdigest()


def forms(key: bytes, tenant_id: str, employee_id: str) -> tuple[str, str]:
    """Every form a tombstone of this person may have: keyed, then legacy."""
    return tombstone(key, tenant_id, employee_id), legacy(tenant_id, employee_id)
