"""The weekly programme report (issue 18): per tenant, once a week, the figures of the week that
ended and of the week before, published as ``io.advocacy.report.weekly.v1`` for notifications to
mail to the tenant's admins.

The figures are the metrics API's, computed by the same functions for the same days: the totals are
the summary's ``totals`` (:func:`reports.range_totals`), the top lists the summary's groups by content
and by employee ranked (:func:`reports.top_groups`), adoption the adoption report of a range ending on
the week's last day (:func:`reports.adoption_of`). A pass (:func:`compose_due`, the clock passed in)
composes each due report once: its figures are read from one snapshot (:func:`draft`), then the
``weekly_reports`` row and the outbox event are written in one transaction, and the row's key
(tenant, week) makes a second pass, or a second worker, compose nothing. A missed week (the
scheduler down for a fortnight) is not made up: only the latest due week is reported.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from advocacy_common.db import one_snapshot
from advocacy_common.events import new_event
from advocacy_common.events.metrics import TOP_N, Adoption, Figures, Ranked, Week, WeeklyReportComposed
from advocacy_common.outbox import add_events
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics.adapters import ranges
from advocacy_metrics.db import SETTINGS, SHARERS, WEEKLY_REPORTS
from advocacy_metrics.domain import weekly
from advocacy_metrics.features import reports
from advocacy_metrics.settings import SOURCE


async def tenants(session: AsyncSession) -> list[str]:
    """The tenants a report is composed for: those with settings, and those who ever had a sharer."""
    q = sa.union(sa.select(SETTINGS.c.tenant_id), sa.select(SHARERS.c.tenant_id).distinct())
    return sorted(str(t) for t in (await session.scalars(sa.select(q.subquery().c.tenant_id))).all())


def figures(m: dict[str, Any]) -> dict[str, int]:
    """The report's four figures of one measures answer (the API's field names: clicks = counted)."""
    return {
        "shares": int(m["shares"] or 0),
        "clicks": m["clicks"],
        "reach": int(m["reach"] or 0),
        "conversions": m["conversions"],
    }


async def week_figures(
    session: AsyncSession, tenant: str, settings: TenantSettings, start: date, end: date, *, top: bool
) -> Week:
    """One week's figures; with ``top``, its top content and top advocates too."""
    days = ranges.DayRange(start, end)
    totals = await reports.range_totals(session, tenant, settings, days)
    # the week is over: its adoption is as of its last day, whatever today is
    a = await reports.adoption_of(session, tenant, settings, days, end)
    lists: dict[str, list[Ranked]] = {"top_content": [], "top_advocates": []}
    if top:
        for field, group_by in (("top_content", "content"), ("top_advocates", "employee")):
            groups = await reports.top_groups(session, tenant, group_by, settings, days, TOP_N)
            lists[field] = [Ranked(key=g["key"] or "", **figures(g)) for g in groups]
    return Week(
        start=start,
        end=end,
        totals=Figures(**figures(totals)),
        adoption=Adoption(
            eligible=a["eligible"],
            eligible_source=a["eligible_source"],
            sharers=a["this_week"]["sharers"],
            share_rate=a["this_week"]["share_rate"],
        ),
        **lists,
    )


async def draft(session: AsyncSession, tenant: str, now: datetime) -> WeeklyReportComposed | None:
    """The tenant's due report, every figure of both weeks read from one snapshot (totals, top lists
    and adoption of one moment, even while a consumer batch commits); None when it was composed."""
    await one_snapshot(session)
    settings = await load_tenant_settings(session, tenant)
    start, end = weekly.due_week(now, settings.zone, settings.week_start_index)
    done = await session.scalar(
        sa.select(WEEKLY_REPORTS.c.report_id).where(
            WEEKLY_REPORTS.c.tenant_id == tenant, WEEKLY_REPORTS.c.week_start == start
        )
    )
    if done is not None:
        return None
    return WeeklyReportComposed(
        report_id=weekly.report_id(tenant, start),
        time_zone=settings.time_zone,
        week=await week_figures(session, tenant, settings, start, end, top=True),
        previous=await week_figures(session, tenant, settings, *weekly.previous_week(start), top=False),
        composed_at=now,
    )


async def compose(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: str, now: datetime
) -> WeeklyReportComposed | None:
    """The tenant's due report, read by :func:`draft` (a read-only snapshot), then claimed and
    written with its event to the outbox; None when it already was (by this pass or another worker:
    the claim's key decides, the loser's draft is dropped)."""
    async with sessionmaker() as session, session.begin():
        report = await draft(session, tenant, now)
    if report is None:
        return None
    async with sessionmaker() as session, session.begin():
        claimed = await session.execute(
            pg_insert(WEEKLY_REPORTS)
            .values(tenant_id=tenant, week_start=report.week.start, report_id=report.report_id, composed_at=now)
            .on_conflict_do_nothing()
            .returning(WEEKLY_REPORTS.c.report_id)
        )
        if claimed.first() is None:
            return None
        await add_events(session, [new_event(SOURCE, tenant, report, at=now, id=report.report_id)])
    return report


async def compose_due(sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Compose every tenant's due report not composed yet, one transaction per tenant (a tenant that
    fails leaves the others' reports alone). Returns how many were composed."""
    async with sessionmaker() as session:
        found = await tenants(session)
    done = 0
    for tenant in found:
        if await compose(sessionmaker, tenant, now) is not None:
            done += 1
    return done
