"""Metrics use cases (read side): load the aggregates, compute the measures, shape the answer.

The write side (events -> facts -> aggregates) is :mod:`advocacy_metrics.features.facts`.
"""

from __future__ import annotations

import bisect
import contextlib
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.errors import Forbidden, Unprocessable
from advocacy_common.pagination import as_str, decode_cursor, encode_cursor, parse_cursor
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics.adapters import queries, ranges
from advocacy_metrics.domain import ACTIVE_DAYS, adoption, weekly
from advocacy_metrics.domain.measures import GroupTotals, Pricing, earned_media_value, measures, merge
from advocacy_metrics.domain.measures import conversion_values as conversion_values_of
from advocacy_metrics.domain.roi import roi_report


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


def summary_query(
    tenant: str,
    group_by: str,
    days: ranges.DayRange,
    settings: TenantSettings,
    after: Any = None,
    limit: int | None = None,
) -> queries.GroupQuery:
    return queries.GroupQuery(tenant, group_by, days, settings.week_start_index, after=after, limit=limit)


def group_measures(key: Any, g: GroupTotals, group_by: str, pricing: Pricing) -> dict[str, Any]:
    dimension = group_by in queries.DIMENSION_GROUPS
    scope = [key] if group_by == "network" else None
    return {"key": key_str(key), **measures(g, pricing, with_shares=not dimension, scope=scope)}


SUMMARY_DEFAULT_LIMIT = 1000  # a year by day is one page; by employee or content, pages
SUMMARY_MAX_LIMIT = 5000


def _summary_after(group_by: str, cursor: str | None, days: ranges.DayRange) -> Any:
    """The last key of the previous page, from the cursor (which names its grouping and range)."""
    if cursor is None:
        return None
    cursor_group, start, end, key = parse_cursor(decode_cursor(cursor), as_str, as_str, as_str, as_str)
    if (cursor_group, start, end) != (group_by, days.start.isoformat(), days.end.isoformat()):
        raise Unprocessable.field("cursor", "the cursor belongs to another group_by or date range")
    if group_by not in queries.TIME_GROUPS:
        return key
    try:
        return date.fromisoformat(key)
    except ValueError as e:
        raise Unprocessable.field("cursor", "invalid cursor") from e


async def summary(
    session: AsyncSession,
    admin: Principal,
    group_by: str,
    raw_from: str | None,
    raw_to: str | None,
    limit: int = SUMMARY_DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of groups in key order (``next_cursor`` for the rest) and the totals of the range.

    A page stops reading at its last group, so a year by employee costs a page, not 70,000 groups."""
    settings = await load_tenant_settings(session, admin.tenant_id)
    days = ranges.resolve(raw_from, raw_to, settings.zone, today_in(settings))
    after = _summary_after(group_by, cursor, days)
    q = summary_query(admin.tenant_id, group_by, days, settings, after, limit + 1)
    pricing = Pricing.of(settings)
    items: list[dict[str, Any]] = []
    groups: list[GroupTotals] = []
    last: Any = None
    more = False
    async with contextlib.aclosing(queries.iter_groups(session, q)) as page:
        async for key, g in page:
            if len(items) == limit:
                more = True
                break
            groups.append(g)
            items.append(group_measures(key, g, group_by, pricing))
            last = key
    dimension = group_by in queries.DIMENSION_GROUPS
    if after is None and not more:
        everything = merge(groups)  # the page is every group
    elif dimension:
        # country, device, referrer: the totals of those roll-ups (a few hundred values at most)
        everything = merge(
            [
                g
                async for _k, g in queries.iter_groups(
                    session, summary_query(admin.tenant_id, group_by, days, settings)
                )
            ]
        )
    else:
        everything = await queries.totals(session, q)
    return {
        "from": days.start.isoformat(),
        "to": days.end.isoformat(),
        "group_by": group_by,
        "time_zone": settings.time_zone,
        "base_currency": settings.base_currency,
        "items": items,
        "totals": measures(everything, pricing, with_shares=not dimension),
        "next_cursor": encode_cursor([group_by, days.start.isoformat(), days.end.isoformat(), key_str(last) or ""])
        if more
        else None,
    }


async def range_totals(
    session: AsyncSession, tenant: str, settings: TenantSettings, days: ranges.DayRange
) -> dict[str, Any]:
    """Every measure of the whole range: the summary's ``totals`` (one query, the same measures)."""
    g = await queries.totals(session, summary_query(tenant, "day", days, settings))
    return measures(g, Pricing.of(settings))


async def top_groups(
    session: AsyncSession, tenant: str, group_by: str, settings: TenantSettings, days: ranges.DayRange, n: int
) -> list[dict[str, Any]]:
    """The ``n`` groups (content or employee) that rank first by :func:`weekly.rank`, each with the
    measures the summary gives the same group. Groups are streamed: memory holds ``n`` of them."""
    pricing = Pricing.of(settings)
    best: list[tuple[tuple[int, ...], int, dict[str, Any]]] = []  # kept sorted, at most n
    seen = 0
    async with contextlib.aclosing(queries.iter_groups(session, summary_query(tenant, group_by, days, settings))) as gs:
        async for key, g in gs:
            m = group_measures(key, g, group_by, pricing)
            entry = (weekly.rank(m), seen, m)  # ``seen``: ties keep the key order
            seen += 1
            if len(best) < n or entry[:2] < best[-1][:2]:
                bisect.insort(best, entry, key=lambda e: e[:2])
                del best[n:]
    return [m for _r, _i, m in best]


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
    return await adoption_of(session, admin.tenant_id, settings, days, today)


async def adoption_of(
    session: AsyncSession, tenant: str, settings: TenantSettings, days: ranges.DayRange, today: date
) -> dict[str, Any]:
    """The adoption report of ``days`` (the API's, and the weekly report's)."""
    as_of = min(days.end, today)
    _lo, hi = ranges.DayRange(days.start, as_of).instants(settings.zone)
    counts = await queries.adoption_counts(
        session,
        tenant,
        days,
        as_of,
        as_of - timedelta(days=ACTIVE_DAYS - 1),
        hi,
        adoption.current_periods(as_of, settings.week_start_index),
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
        eligible=counts.eligible,
        from_directory=counts.from_directory,
        shared_this_week=counts.shared_this_week,
        shared_this_month=counts.shared_this_month,
    )
