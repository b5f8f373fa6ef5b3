"""Conversions reported by partners: signed requests, verification, attribution.

A request is either authenticated by a partner token (its ``sub`` is the partner: features/partners.py),
or signed: ``X-Advocacy-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`` with one of
the tenant's partners' conversion secrets, the timestamp within 5 minutes of now (an older request is
a replay). The secret that verifies names the partner (``X-Advocacy-Partner``, when sent, must be
that partner). Each partner has its own ``external_id`` space: conversions are keyed (tenant,
partner, external_id). The conversion is attributed to the share of the click it names (last click):
the click id is signed (clickid.py), so a forged one is refused without a lookup, and it carries the
click's time for the attribution window. Anything malformed in the headers is a 401, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.errors import NotFound, Unauthorized, Unprocessable
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ConversionRecorded
from advocacy_common.outbox import add_event
from advocacy_common.signing import same_mac
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_sharing.adapters.clickid import ClickIds
from advocacy_sharing.db import DEFAULT_PARTNER, Conversion, ConversionSecret, Share
from advocacy_sharing.schemas import ConversionIn
from advocacy_sharing.settings import SOURCE

SIGNATURE_PREFIX = "sha256="
#: Unix seconds have 10 digits until 2286: a longer timestamp is malformed (and a huge one would not
#: convert to a float to be compared with now).
MAX_TIMESTAMP_DIGITS = 12
#: ``sha256=`` and 64 hex digits; anything longer is malformed, not worth an HMAC per secret.
MAX_SIGNATURE_LENGTH = 128


# -- signatures (pure) --------------------------------------------------------------------------------------
def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + mac


@dataclass(frozen=True, slots=True)
class SignedRequest:
    tenant_id: str
    timestamp: str
    signature: str
    #: ``X-Advocacy-Partner``, when sent: only that partner's secrets are tried.
    partner_id: str | None = None


def check_timestamp(timestamp: str, now: datetime, max_skew_seconds: int) -> None:
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise Unauthorized("X-Advocacy-Timestamp must be unix seconds")
    ts = int(timestamp)
    if abs(now.timestamp() - ts) > max_skew_seconds:
        raise Unauthorized(f"X-Advocacy-Timestamp is more than {max_skew_seconds} s from now (a replay?)")


def signature_matches(candidates: list[tuple[str, str]], timestamp: str, body: bytes, given: str) -> str | None:
    """The partner whose secret signed ``body``, or None. ``candidates``: (partner id, secret)."""
    given = given.strip().lower()
    if len(given) > MAX_SIGNATURE_LENGTH:
        return None
    matched: str | None = None
    for partner_id, secret in candidates:  # compare against every valid secret, without an early exit
        if same_mac(signature(secret, timestamp, body), given):
            matched = partner_id
    return matched


# -- secrets ----------------------------------------------------------------------------------------------------
async def valid_secrets(
    session: AsyncSession, tenant_id: str, now: datetime, partner_id: str | None = None
) -> list[tuple[str, str]]:
    """(partner id, secret) of every secret that verifies now (revoked partners' have all retired)."""
    stmt = select(col(ConversionSecret.partner_id), col(ConversionSecret.secret)).where(
        ConversionSecret.tenant_id == tenant_id,
        sa.or_(col(ConversionSecret.retired_at).is_(None), col(ConversionSecret.retired_at) > now),
    )
    if partner_id is not None:
        stmt = stmt.where(ConversionSecret.partner_id == partner_id)
    return [(p, s) for p, s in (await session.execute(stmt)).all()]


async def verify_signed(
    session: AsyncSession, req: SignedRequest, body: bytes, *, now: datetime, max_skew_seconds: int
) -> str:
    """The partner the request is from (the one whose secret verified), or 401."""
    check_timestamp(req.timestamp, now, max_skew_seconds)
    candidates = await valid_secrets(session, req.tenant_id, now, req.partner_id)
    partner_id = signature_matches(candidates, req.timestamp, body, req.signature) if candidates else None
    if partner_id is None:
        raise Unauthorized("bad signature")
    return partner_id


# -- recording ----------------------------------------------------------------------------------------------
async def record_conversion(
    session: AsyncSession,
    tenant_id: str,
    body: ConversionIn,
    *,
    click_ids: ClickIds,
    partner_id: str = DEFAULT_PARTNER,
    now: datetime | None = None,
) -> str:
    """The conversion id; the same partner's same ``external_id`` again returns the first one's id
    (another partner's ``external_id`` is another conversion: it is never seen, nor claimed)."""
    now = now or datetime.now(UTC)
    mine = (
        col(Conversion.tenant_id) == tenant_id,
        col(Conversion.partner_id) == partner_id,
        col(Conversion.external_id) == body.external_id,
    )
    existing = await session.scalar(select(col(Conversion.id)).where(*mine))
    if existing is not None:
        return existing
    ref = click_ids.parse(body.click_id)
    if ref is None:
        raise NotFound("unknown click id")
    share = (await session.scalars(select(Share).where(Share.code == ref.code, Share.tenant_id == tenant_id))).first()
    if share is None:
        raise NotFound("unknown click id")
    window_days = (await load_tenant_settings(session, tenant_id)).attribution_window_days
    if now - ref.at > timedelta(days=window_days):
        raise Unprocessable.field("click_id", f"the click is older than the attribution window ({window_days} days)")
    conversion_id = str(uuid.uuid4())
    inserted = await session.execute(
        pg_insert(Conversion)
        .values(
            id=conversion_id,
            tenant_id=tenant_id,
            partner_id=partner_id,
            external_id=body.external_id,
            click_id=body.click_id,
            code=ref.code,
            share_id=share.id,
            employee_id=share.employee_id,
            content_id=share.content_id,
            network=share.network,
            kind=body.kind,
            value_amount=body.value.amount if body.value else None,
            value_currency=body.value.currency if body.value else None,
            clicked_at=ref.at,
            occurred_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_conversion_external_id")
        .returning(col(Conversion.id))
    )
    if inserted.first() is None:  # a concurrent request with the same external_id won
        again = await session.scalar(select(col(Conversion.id)).where(*mine))
        assert again is not None
        return again
    if share.employee_id is not None:  # an erased member's links credit no one
        event = ConversionRecorded(
            conversion_id=conversion_id,
            click_id=body.click_id,
            share_id=share.id,
            content_id=share.content_id,
            network=share.network,
            employee_id=share.employee_id,
            team=share.team,
            kind=body.kind,
            value=body.value,
            external_id=body.external_id,
            occurred_at=now,
        )
        await add_event(session, new_event(SOURCE, tenant_id, event, at=now, id=f"conversion-{conversion_id}"))
    return conversion_id
