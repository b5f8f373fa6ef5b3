"""Metrics use cases: record facts and move aggregates in one transaction; read them back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from advocacy_common.auth import Principal
from advocacy_common.errors import Forbidden
from advocacy_common.events import Envelope
from advocacy_common.events.sharing import ShareClicked, ShareCreated
from advocacy_metrics import domain
from advocacy_metrics.db import STAT_COLUMNS, ClickFact, DailyStat, ShareFact


async def record_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    shares = [e for e in events if isinstance(e.data, ShareCreated)]
    clicks = [e for e in events if isinstance(e.data, ShareClicked)]
    facts: list[domain.Fact] = []
    if shares:
        rows = [
            {
                "share_id": e.data.share_id,
                "tenant_id": e.tenant_id,
                "employee_id": e.data.employee_id,
                "content_id": e.data.content_id,
                "network": e.data.network,
                "team": e.data.team or "",
                "created_at": e.data.created_at,
                "audience_size": e.data.audience_size,
            }
            for e in shares
        ]
        res = await session.execute(
            pg_insert(ShareFact).values(rows).on_conflict_do_nothing().returning(col(ShareFact.share_id))
        )
        new = {r[0] for r in res.all()}
        facts += [domain.Fact(e.tenant_id, e.data) for e in shares if e.data.share_id in new]
    if clicks:
        rows = [
            {
                "click_id": e.data.click_id,
                "tenant_id": e.tenant_id,
                "share_id": e.data.share_id,
                "employee_id": e.data.employee_id,
                "content_id": e.data.content_id,
                "network": e.data.network,
                "team": e.data.team or "",
                "clicked_at": e.data.clicked_at,
                "verdict": e.data.verdict.value,
                "device": e.data.device,
                "browser": e.data.browser,
                "os": e.data.os,
                "referrer_domain": e.data.referrer_domain,
                "country": e.data.country,
            }
            for e in clicks
        ]
        new = set()
        for i in range(0, len(rows), 2000):
            res = await session.execute(
                pg_insert(ClickFact)
                .values(rows[i : i + 2000])
                .on_conflict_do_nothing()
                .returning(col(ClickFact.click_id))
            )
            new.update(r[0] for r in res.all())
        facts += [domain.Fact(e.tenant_id, e.data) for e in clicks if e.data.click_id in new]
    await apply_deltas(session, domain.deltas(facts))


async def apply_deltas(session: AsyncSession, deltas: dict[domain.StatKey, dict[str, int]]) -> None:
    if not deltas:
        return
    rows = []
    for (tenant, day, employee, content, network, team), counters in sorted(deltas.items()):
        row: dict[str, Any] = {
            "tenant_id": tenant,
            "day": day,
            "employee_id": employee,
            "content_id": content,
            "network": network,
            "team": team,
        }
        row.update({c: counters.get(c, 0) for c in STAT_COLUMNS})
        rows.append(row)
    stmt = pg_insert(DailyStat).values(rows)
    table = DailyStat.__table__  # type: ignore[attr-defined]
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "day", "employee_id", "content_id", "network", "team"],
            set_={c: table.c[c] + stmt.excluded[c] for c in STAT_COLUMNS},
        )
    )


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
