"""Conversions reported by partners: signed requests, secrets and their rotation, attribution.

A request is either authenticated by a partner token, or signed: ``X-Advocacy-Signature:
sha256=<hex HMAC-SHA256 of "{timestamp}.{raw body}">`` with the tenant's conversion secret, the
timestamp within 5 minutes of now (an older request is a replay). The conversion is attributed to
the share of the click it names (last click): the click id is signed (clickid.py), so a forged one
is refused without a lookup, and it carries the click's time for the attribution window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
from advocacy_sharing.db import Conversion, ConversionSecret, Share
from advocacy_sharing.schemas import ConversionIn
from advocacy_sharing.settings import SOURCE

SIGNATURE_PREFIX = "sha256="


# -- signatures (pure) --------------------------------------------------------------------------------------
def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + mac


@dataclass(frozen=True, slots=True)
class SignedRequest:
    tenant_id: str
    timestamp: str
    signature: str


def check_timestamp(timestamp: str, now: datetime, max_skew_seconds: int) -> None:
    try:
        ts = int(timestamp)
    except ValueError as e:
        raise Unauthorized("X-Advocacy-Timestamp must be unix seconds") from e
    if abs(now.timestamp() - ts) > max_skew_seconds:
        raise Unauthorized(f"X-Advocacy-Timestamp is more than {max_skew_seconds} s from now (a replay?)")


def signature_matches(candidates: list[str], timestamp: str, body: bytes, given: str) -> bool:
    ok = False
    for secret in candidates:  # compare against every valid secret, without an early exit
        ok |= same_mac(signature(secret, timestamp, body), given.strip().lower())
    return ok


# -- secrets ----------------------------------------------------------------------------------------------------
async def valid_secrets(session: AsyncSession, tenant_id: str, now: datetime) -> list[str]:
    rows = await session.scalars(
        select(col(ConversionSecret.secret)).where(
            ConversionSecret.tenant_id == tenant_id,
            sa.or_(col(ConversionSecret.retired_at).is_(None), col(ConversionSecret.retired_at) > now),
        )
    )
    return list(rows.all())


async def verify_signed(
    session: AsyncSession, req: SignedRequest, body: bytes, *, now: datetime, max_skew_seconds: int
) -> None:
    check_timestamp(req.timestamp, now, max_skew_seconds)
    candidates = await valid_secrets(session, req.tenant_id, now)
    if not candidates or not signature_matches(candidates, req.timestamp, body, req.signature):
        raise Unauthorized("bad signature")


async def rotate_secret(
    session: AsyncSession, tenant_id: str, *, now: datetime, grace: timedelta
) -> tuple[ConversionSecret, datetime | None]:
    """A new secret; the current one keeps working for ``grace`` (older ones stop now)."""
    await session.execute(
        sa.update(ConversionSecret)
        .where(
            col(ConversionSecret.tenant_id) == tenant_id,
            sa.or_(col(ConversionSecret.retired_at).is_(None), col(ConversionSecret.retired_at) > now),
        )
        .values(retired_at=now)
    )
    current = (
        await session.scalars(
            select(ConversionSecret)
            .where(ConversionSecret.tenant_id == tenant_id)
            .order_by(col(ConversionSecret.created_at).desc())
            .limit(1)
        )
    ).first()
    previous_until = None
    if current is not None:
        previous_until = now + grace
        current.retired_at = previous_until
    new = ConversionSecret(
        id=str(uuid.uuid4()), tenant_id=tenant_id, secret=secrets.token_urlsafe(32), created_at=now, retired_at=None
    )
    session.add(new)
    await session.flush()
    return new, previous_until


# -- recording ----------------------------------------------------------------------------------------------
async def record_conversion(
    session: AsyncSession, tenant_id: str, body: ConversionIn, *, click_ids: ClickIds, now: datetime | None = None
) -> str:
    """The conversion id; the same ``external_id`` again returns the first one's id."""
    now = now or datetime.now(UTC)
    existing = await session.scalar(
        select(col(Conversion.id)).where(Conversion.tenant_id == tenant_id, Conversion.external_id == body.external_id)
    )
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
        again = await session.scalar(
            select(col(Conversion.id)).where(
                Conversion.tenant_id == tenant_id, Conversion.external_id == body.external_id
            )
        )
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
