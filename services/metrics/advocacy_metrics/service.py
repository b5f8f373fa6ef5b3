"""Metrics use cases: record facts and move aggregates in one transaction; read them back."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.errors import Forbidden
from advocacy_metrics.db import STAT_COLUMNS, DailyStat


async def employee_metrics(session: AsyncSession, who: Principal, employee_id: str) -> dict[str, Any]:
    if employee_id == "me":
        employee_id = who.sub
    if employee_id != who.sub and not who.is_admin:
        raise Forbidden("employees can read only their own metrics")
    table = DailyStat.__table__  # type: ignore[attr-defined]
    row = (
        await session.execute(
            sa.select(*(sa.func.coalesce(sa.func.sum(table.c[c]), 0).label(c) for c in STAT_COLUMNS)).where(
                table.c.tenant_id == who.tenant_id, table.c.employee_id == employee_id
            )
        )
    ).one()
    v = row._mapping
    return {
        "employee_id": employee_id,
        "shares": int(v["shares"]),
        "clicks": int(v["clicks_counted"]),
        "clicks_by_verdict": {
            "counted": int(v["clicks_counted"]),
            "bot": int(v["clicks_bot"]),
            "duplicate": int(v["clicks_duplicate"]),
            "self": int(v["clicks_self"]),
            "rate_limited": int(v["clicks_rate_limited"]),
            "invalidated": int(v["clicks_invalidated"]),
        },
        "conversions": 0,
        "conversion_value": [],
        "reach": int(v["reach"]),
    }
