"""Partners as principals (issue 13, item 4): each partner of a tenant has its own conversion secrets
and its own ``external_id`` space.

An admin creates a partner (``id``, ``name``; the first secret comes with it), rotates its secret
(the previous one keeps verifying for a stated overlap, then stops) and revokes it (every secret of
it stops at once, its tokens are refused, its id is never given again). A partner token names its
partner in ``sub`` (role ``partner``). What existed before partners belongs to each tenant's
``default`` partner, which the old ``POST /v1/conversion-secrets/rotate`` still rotates. Every
change is in the audit log, in the transaction of the change.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, func, select

from advocacy_common import audit
from advocacy_common.errors import Conflict, Forbidden, NotFound, Unprocessable
from advocacy_common.pagination import PageParams, as_str, encode_cursor, parse_cursor
from advocacy_sharing.db import DEFAULT_PARTNER, ConversionSecret, Partner

#: A partner id: what a token's ``sub`` and the ``X-Advocacy-Partner`` header carry, so plain ASCII.
PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
#: Partners per tenant. A signed conversion is checked against every live secret of the tenant
#: (at most two per partner during an overlap), so this bounds the HMACs one request can cost.
MAX_PARTNERS = 100
#: The longest overlap an admin may ask for on a rotation (a week).
MAX_OVERLAP = timedelta(days=7)


def check_partner_id(partner_id: str) -> str:
    if not PARTNER_ID.fullmatch(partner_id):
        raise Unprocessable.field(
            "id", "a partner id is 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )
    return partner_id


def _live(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(col(ConversionSecret.retired_at).is_(None), col(ConversionSecret.retired_at) > now)


def _new_secret(tenant_id: str, partner_id: str, now: datetime) -> ConversionSecret:
    return ConversionSecret(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        partner_id=partner_id,
        secret=secrets.token_urlsafe(32),
        created_at=now,
        retired_at=None,
    )


@dataclass(frozen=True, slots=True)
class Rotated:
    secret: ConversionSecret
    previous_valid_until: datetime | None


async def create_partner(
    session: AsyncSession, tenant_id: str, actor: str, partner_id: str, name: str, *, now: datetime
) -> tuple[Partner, ConversionSecret]:
    """A new partner and its first secret; 409 when the id is taken (or was, by a revoked partner)."""
    check_partner_id(partner_id)
    if partner_id == DEFAULT_PARTNER:
        raise Conflict(f"{DEFAULT_PARTNER!r} is every tenant's own partner: choose another id")
    count = await session.scalar(select(func.count()).select_from(Partner).where(Partner.tenant_id == tenant_id))
    if (count or 0) >= MAX_PARTNERS:
        raise Conflict(f"a tenant has at most {MAX_PARTNERS} partners")
    inserted = await session.execute(
        pg_insert(Partner)
        .values(tenant_id=tenant_id, id=partner_id, name=name, created_at=now, revoked_at=None)
        .on_conflict_do_nothing()
        .returning(col(Partner.id))
    )
    if inserted.first() is None:
        raise Conflict(f"partner {partner_id!r} exists (a revoked partner's id is not given again)")
    partner = Partner(tenant_id=tenant_id, id=partner_id, name=name, created_at=now, revoked_at=None)
    secret = _new_secret(tenant_id, partner_id, now)
    session.add(secret)
    await session.flush()
    await audit.record(
        session, tenant_id, actor, "partner.created", target=partner_id, after={"id": partner_id, "name": name}, at=now
    )
    await audit.record(
        session,
        tenant_id,
        actor,
        "conversion_secret.created",
        target=partner_id,
        after={"secret_id": secret.id},
        at=now,
    )
    return partner, secret


async def _ensure_default(session: AsyncSession, tenant_id: str, now: datetime) -> None:
    await session.execute(
        pg_insert(Partner)
        .values(tenant_id=tenant_id, id=DEFAULT_PARTNER, name="Default partner", created_at=now, revoked_at=None)
        .on_conflict_do_nothing()
    )


async def get_partner(session: AsyncSession, tenant_id: str, partner_id: str) -> Partner:
    partner = await session.get(Partner, (tenant_id, partner_id))
    if partner is None:
        raise NotFound(f"no partner {partner_id!r}")
    return partner


async def list_partners(session: AsyncSession, tenant_id: str, page: PageParams) -> tuple[list[Partner], str | None]:
    stmt = select(Partner).where(Partner.tenant_id == tenant_id)
    if page.cursor is not None:
        (after,) = parse_cursor(page.cursor, as_str)
        stmt = stmt.where(col(Partner.id) > after)
    rows = list((await session.scalars(stmt.order_by(col(Partner.id)).limit(page.limit + 1))).all())
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, encode_cursor([rows[-1].id]) if more else None


async def rotate_secret(
    session: AsyncSession, tenant_id: str, actor: str, partner_id: str, *, now: datetime, overlap: timedelta
) -> Rotated:
    """A new secret; the newest current one keeps verifying for ``overlap`` (older ones stop now)."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise Unprocessable.field("overlap_hours", f"between 0 and {int(MAX_OVERLAP.total_seconds()) // 3600}")
    if partner_id == DEFAULT_PARTNER:
        await _ensure_default(session, tenant_id, now)
    partner = await get_partner(session, tenant_id, partner_id)
    if partner.revoked_at is not None:
        raise Conflict(f"partner {partner_id!r} is revoked")
    mine = (col(ConversionSecret.tenant_id) == tenant_id, col(ConversionSecret.partner_id) == partner_id)
    current = (
        await session.scalars(
            select(ConversionSecret).where(*mine, _live(now)).order_by(col(ConversionSecret.created_at).desc()).limit(1)
        )
    ).first()
    await session.execute(sa.update(ConversionSecret).where(*mine, _live(now)).values(retired_at=now))
    previous_until = None
    if current is not None:
        previous_until = now + overlap
        current.retired_at = previous_until
    new = _new_secret(tenant_id, partner_id, now)
    session.add(new)
    await session.flush()
    await audit.record(
        session,
        tenant_id,
        actor,
        "conversion_secret.created",
        target=partner_id,
        before={"secret_id": current.id, "valid_until": previous_until} if current is not None else None,
        after={"secret_id": new.id},
        at=now,
    )
    return Rotated(new, previous_until)


async def revoke_partner(
    session: AsyncSession, tenant_id: str, actor: str, partner_id: str, *, now: datetime
) -> Partner:
    """Every secret of the partner stops now, and its tokens are refused from now on."""
    partner = await get_partner(session, tenant_id, partner_id)
    if partner.revoked_at is None:
        partner.revoked_at = now
    stopped = await session.execute(
        sa.update(ConversionSecret)
        .where(col(ConversionSecret.tenant_id) == tenant_id, col(ConversionSecret.partner_id) == partner_id, _live(now))
        .values(retired_at=now)
        .returning(col(ConversionSecret.id))
    )
    await session.flush()
    await audit.record(
        session,
        tenant_id,
        actor,
        "conversion_secret.revoked",
        target=partner_id,
        after={"secret_ids": sorted(stopped.scalars().all())},
        at=now,
    )
    await audit.record(session, tenant_id, actor, "partner.revoked", target=partner_id, at=now)
    return partner


async def token_partner(session: AsyncSession, tenant_id: str, partner_id: str) -> str:
    """The partner a partner token speaks for (its ``sub``): registered and not revoked, or 403."""
    partner = await session.get(Partner, (tenant_id, partner_id)) if PARTNER_ID.fullmatch(partner_id) else None
    if partner is None:
        raise Forbidden(f"no partner {partner_id[:64]!r} in this tenant (an admin creates it: POST /v1/partners)")
    if partner.revoked_at is not None:
        raise Forbidden(f"partner {partner_id!r} is revoked")
    return partner_id
