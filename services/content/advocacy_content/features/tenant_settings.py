"""Tenant settings: content is their system of record. Every change is published as
``io.advocacy.tenant.settings_updated.v1``; the other services keep a copy from it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit
from advocacy_common.auth.principal import Principal
from advocacy_common.errors import Unprocessable
from advocacy_common.events.content import TenantSettingsUpdated
from advocacy_common.tenant import DEFAULT_SETTINGS, TenantSettings, TenantSettingsIn
from advocacy_content.adapters.events import emit, now
from advocacy_content.db import TenantSettingsTable
from advocacy_content.schemas import TenantSettingsPublic, check_url

T = TenantSettingsTable


async def _load(
    session: AsyncSession, tenant_id: str, *, for_update: bool = False
) -> tuple[TenantSettings, datetime | None]:
    stmt = sa.select(T.c.settings, T.c.updated_at).where(T.c.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        return DEFAULT_SETTINGS, None
    return TenantSettings.model_validate(row[0]), row[1]


async def current(session: AsyncSession, tenant_id: str) -> TenantSettings:
    """The tenant's settings (the defaults until an admin saved some)."""
    return (await _load(session, tenant_id))[0]


async def get_settings(session: AsyncSession, who: Principal) -> TenantSettingsPublic:
    settings, updated_at = await _load(session, who.tenant_id)
    return TenantSettingsPublic(**settings.model_dump(), updated_at=updated_at)


async def put_settings(session: AsyncSession, who: Principal, body: TenantSettingsIn) -> TenantSettingsPublic:
    """Replace the settings; publish them when they changed."""
    fields = body.model_dump()
    if body.partner_webhook_url is not None:
        try:
            fields["partner_webhook_url"] = check_url(body.partner_webhook_url)
        except ValueError as e:
            raise Unprocessable.field("partner_webhook_url", str(e)) from e
    new = TenantSettings.model_validate(fields)
    old, updated_at = await _load(session, who.tenant_id, for_update=True)
    doc = new.model_dump(mode="json")
    if updated_at is not None and old.model_dump(mode="json") == doc:
        return TenantSettingsPublic(**new.model_dump(), updated_at=updated_at)
    at = now()
    stmt = pg_insert(T).values(tenant_id=who.tenant_id, settings=doc, updated_at=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id"], set_={"settings": stmt.excluded.settings, "updated_at": at}
        )
    )
    await emit(session, who.tenant_id, TenantSettingsUpdated(settings=new, updated_at=at), at)
    before = old.model_dump(mode="json") if updated_at is not None else None
    await audit.record(session, who.tenant_id, who.sub, "tenant_settings.updated", before=before, after=doc, at=at)
    return TenantSettingsPublic(**new.model_dump(), updated_at=at)
