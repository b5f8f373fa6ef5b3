"""Metrics use cases (read side): load the aggregates, compute the measures, shape the answer.

The write side (events -> facts -> aggregates) is :mod:`advocacy_metrics.facts`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.errors import Forbidden
from advocacy_common.tenant import TenantSettings, load_tenant_settings
from advocacy_metrics import adoption, queries, ranges
from advocacy_metrics.domain import ACTIVE_DAYS
from advocacy_metrics.measures import GroupTotals, Pricing, earned_media_value, measures, merge
from advocacy_metrics.measures import conversion_values as conversion_values_of
from advocacy_metrics.roi import roi_report


def today_in(settings: TenantSettings) -> date:
    return datetime.now(settings.zone).date()


def key_str(key: Any) -> str | None:
    if isinstance(key, date):
        return key.isoformat()
    return str(key) if key else None


async def employee_metrics(
    session: AsyncSession, who: Principal, employee_id: str, raw_from: str | None = None, raw_to: str | None = None
) -> dict[str, Any]:
    if employee_id == "me":
        employee_id = who.sub
    if employee_id != who.sub and not who.is_admin:
        raise Forbidden("employees can read only their own metrics")
    settings = await load_tenant_settings(session, who.tenant_id)
    days = ranges.resolve_optional(raw_from, raw_to, settings.zone, today_in(settings))
    q = queries.GroupQuery(who.tenant_id, None, days, employee_id=employee_id)
    g = await queries.totals(session, q)
    return {
        "employee_id": employee_id,
        **measures(g, Pricing.of(settings)),
        "audience": await queries.audience(session, who.tenant_id, employee_id),
        "by_network": await _network_breakdown(session, q, settings),
    }


async def content_metrics(
    session: AsyncSession, who: Principal, content_id: str, raw_from: str | None = None, raw_to: str | None = None
) -> dict[str, Any]:
    settings = await load_tenant_settings(session, who.tenant_id)
    days = ranges.resolve_optional(raw_from, raw_to, settings.zone, today_in(settings))
    q = queries.GroupQuery(who.tenant_id, None, days, content_id=content_id)
    g = await queries.totals(session, q)
    return {
        "content_id": content_id,
        **measures(g, Pricing.of(settings)),
        "by_network": await _network_breakdown(session, q, settings),
    }


async def _network_breakdown(
    session: AsyncSession, q: queries.GroupQuery, settings: TenantSettings
) -> list[dict[str, Any]]:
    per = queries.GroupQuery(q.tenant, "network", q.days, employee_id=q.employee_id, content_id=q.content_id)
    pricing = Pricing.of(settings)
    return [{"network": key, **measures(g, pricing, scope=[key])} async for key, g in queries.iter_groups(session, per)]


def summary_query(tenant: str, group_by: str, days: ranges.DayRange, settings: TenantSettings) -> queries.GroupQuery:
    return queries.GroupQuery(tenant, group_by, days, settings.week_start_index)


def group_measures(key: Any, g: GroupTotals, group_by: str, pricing: Pricing) -> dict[str, Any]:
    dimension = group_by in queries.DIMENSION_GROUPS
    scope = [key] if group_by == "network" else None
    return {"key": key_str(key), **measures(g, pricing, with_shares=not dimension, scope=scope)}


async def summary(
    session: AsyncSession, admin: Principal, group_by: str, raw_from: str | None, raw_to: str | None
) -> dict[str, Any]:
    settings = await load_tenant_settings(session, admin.tenant_id)
    days = ranges.resolve(raw_from, raw_to, settings.zone, today_in(settings))
    q = summary_query(admin.tenant_id, group_by, days, settings)
    pricing = Pricing.of(settings)
    items = []
    groups = []
    async for key, g in queries.iter_groups(session, q):
        groups.append(g)
        items.append(group_measures(key, g, group_by, pricing))
    return {
        "from": days.start.isoformat(),
        "to": days.end.isoformat(),
        "group_by": group_by,
        "time_zone": settings.time_zone,
        "base_currency": settings.base_currency,
        "items": items,
        "totals": measures(merge(groups), pricing, with_shares=group_by not in queries.DIMENSION_GROUPS),
    }


async def roi(session: AsyncSession, admin: Principal, raw_from: str | None, raw_to: str | None) -> dict[str, Any]:
    settings = await load_tenant_settings(session, admin.tenant_id)
    days = ranges.resolve(raw_from, raw_to, settings.zone, today_in(settings))
    g = await queries.totals(session, queries.GroupQuery(admin.tenant_id, None, days))
    lo, hi = days.instants(settings.zone)
    return roi_report(
        conversion_value=conversion_values_of(g.conversions),
        earned_media_value=earned_media_value(g.by_network, Pricing.of(settings)),
        rewards=await queries.rewards_redeemed(session, admin.tenant_id, lo, hi),
        settings=settings,
        start=days.start,
        end=days.end,
    )


async def adoption_metrics(
    session: AsyncSession, admin: Principal, raw_from: str | None, raw_to: str | None
) -> dict[str, Any]:
    settings = await load_tenant_settings(session, admin.tenant_id)
    today = today_in(settings)
    days = ranges.resolve(raw_from, raw_to, settings.zone, today)
    as_of = min(days.end, today)
    _lo, hi = ranges.DayRange(days.start, as_of).instants(settings.zone)
    counts = await queries.adoption_counts(
        session,
        admin.tenant_id,
        days,
        as_of,
        as_of - timedelta(days=ACTIVE_DAYS - 1),
        hi,
    )
    return adoption.adoption_report(
        start=days.start,
        end=days.end,
        as_of=as_of,
        week_start_index=settings.week_start_index,
        enrolled=counts.enrolled,
        active_members=counts.active_members,
        active_sharers=counts.active_sharers,
        new_by_day=counts.new_by_day,
        lapsed_by_day=counts.lapsed_by_day,
    )
