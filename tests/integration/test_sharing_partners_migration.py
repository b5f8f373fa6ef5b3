"""Migration 0006_partners of sharing keeps existing data working (issue 13, item 4): the tenant's
secrets and conversions belong to its ``default`` partner, a signed conversion with the old secret
still verifies (as the default partner), and code without partners still inserts through
``ON CONFLICT ON CONSTRAINT uq_conversion_external_id``, into the default partner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.db import make_engine
from advocacy_common.migrations import upgrade
from advocacy_sharing.features.conversions import SignedRequest, signature, verify_signed

pytestmark = pytest.mark.integration

_CONVERSION = (
    "INSERT INTO conversions (id, tenant_id, external_id, click_id, code, share_id, employee_id, content_id,"
    " network, kind, clicked_at, occurred_at) VALUES (:id, 't', :ext, 'c', 'code', 's', 'e', 'x', 'linkedin',"
    " 'sale', :at, :at) ON CONFLICT ON CONSTRAINT uq_conversion_external_id DO NOTHING"
)


async def test_existing_secrets_and_conversions_belong_to_the_default_partner(new_database: str) -> None:
    await asyncio.to_thread(upgrade, "advocacy_sharing", new_database, "0005")
    engine = make_engine(new_database, pool_size=1)
    at = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO conversion_secrets (id, tenant_id, secret, created_at) VALUES ('k', 't', 'old', :at)"
                ),
                {"at": at},
            )
            await conn.execute(sa.text(_CONVERSION), {"id": "c1", "ext": "order-1", "at": at})
        await asyncio.to_thread(upgrade, "advocacy_sharing", new_database, "0006_partners")
        async with engine.begin() as conn:
            partners = (await conn.execute(sa.text("SELECT tenant_id, id FROM partners"))).all()
            owners = (
                (
                    await conn.execute(
                        sa.text(
                            "SELECT partner_id FROM conversions UNION ALL SELECT partner_id FROM conversion_secrets"
                        )
                    )
                )
                .scalars()
                .all()
            )
            # code without partners: its insert still finds the constraint, lands in the default partner,
            # and is deduplicated there as before
            await conn.execute(sa.text(_CONVERSION), {"id": "c2", "ext": "order-1", "at": at})
            await conn.execute(sa.text(_CONVERSION), {"id": "c3", "ext": "order-2", "at": at})
            # another partner's order-1 is its own conversion
            await conn.execute(
                sa.text(
                    _CONVERSION.replace("(id, tenant_id,", "(partner_id, id, tenant_id,").replace(
                        "VALUES (:id,", "VALUES ('shop', :id,"
                    )
                ),
                {"id": "c4", "ext": "order-1", "at": at},
            )
            rows = (await conn.execute(sa.text("SELECT id, partner_id FROM conversions ORDER BY id"))).all()
        async with engine.connect() as conn, AsyncSession(bind=conn) as session:
            stamp = str(int(at.timestamp()))
            req = SignedRequest("t", stamp, signature("old", stamp, b"{}"))
            partner = await verify_signed(session, req, b"{}", now=at + timedelta(seconds=1), max_skew_seconds=300)
    finally:
        await engine.dispose()
    assert [tuple(p) for p in partners] == [("t", "default")]
    assert owners == ["default", "default"]
    assert [tuple(r) for r in rows] == [("c1", "default"), ("c3", "default"), ("c4", "shop")]
    assert partner == "default"
