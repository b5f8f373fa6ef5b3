"""Each service's copy of its tenants' settings: the ``tenant_settings`` table (added by
:func:`add_tenant_settings_table`), upserted from ``io.advocacy.tenant.settings_updated.v1`` by
:func:`apply_tenant_settings`, read by :func:`load_tenant_settings`. The contract itself is
:mod:`advocacy_common.tenant`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.events.content import TenantSettingsUpdated
from advocacy_common.tenant import DEFAULT_SETTINGS, TenantSettings

_settings_meta = sa.MetaData()
TENANT_SETTINGS = sa.Table(
    "tenant_settings",
    _settings_meta,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("settings", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Each consuming service's copy of its tenants' settings."""


def add_tenant_settings_table(metadata: sa.MetaData) -> None:
    TENANT_SETTINGS.to_metadata(metadata)


async def apply_tenant_settings(session: AsyncSession, events: Sequence[Any]) -> None:
    """Upsert the copy from settings events; an older event never overwrites a newer copy."""
    for env in events:
        if not isinstance(env.data, TenantSettingsUpdated):
            continue
        stmt = pg_insert(TENANT_SETTINGS).values(
            tenant_id=env.tenant_id, settings=env.data.settings.model_dump(mode="json"), updated_at=env.data.updated_at
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id"],
                set_={"settings": stmt.excluded.settings, "updated_at": stmt.excluded.updated_at},
                where=TENANT_SETTINGS.c.updated_at <= stmt.excluded.updated_at,
            )
        )


async def load_tenant_settings(session: AsyncSession, tenant_id: str) -> TenantSettings:
    raw = await session.scalar(sa.select(TENANT_SETTINGS.c.settings).where(TENANT_SETTINGS.c.tenant_id == tenant_id))
    return settings_of(raw)


def settings_of(raw: Any) -> TenantSettings:
    """A ``settings`` value of the copy (None: no copy yet) as the tenant's settings."""
    return TenantSettings.model_validate(raw) if raw else DEFAULT_SETTINGS
