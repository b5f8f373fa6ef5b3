"""Metrics use cases (read side): load the aggregates, compute the measures, shape the answer.

The write side (events -> facts -> aggregates) is :mod:`advocacy_metrics.features.facts`.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.db import one_snapshot
from advocacy_common.errors import Forbidden, Unprocessable
from advocacy_common.pagination import as_int, as_str, decode_cursor, encode_cursor, parse_cursor
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics.adapters import queries, ranges
from advocacy_metrics.domain import adoption, weekly
from advocacy_metrics.domain.measures import GroupTotals, Pricing, earned_media_value, measures, merge, page_measures
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
    """A person's measures, their audience and the same measures by network, from one snapshot: the
    networks add up to the totals even while a consumer batch commits between the reads."""
    if employee_id == "me":
        employee_id = who.sub
    if employee_id != who.sub and not who.is_admin:
        raise Forbidden("employees can read only their own metrics")
    await one_snapshot(session)
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
    """An item's measures and the same measures by network, from one snapshot (they add up)."""
    await one_snapshot(session)
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
ORDERS = ("key", "clicks")  # key order; counted clicks, most first (ties in key order)


def _cursor_key(group_by: str, key: str) -> Any:
    if group_by not in queries.TIME_GROUPS:
        return key
    try:
        return date.fromisoformat(key)
    except ValueError as e:
        raise Unprocessable.field("cursor", "invalid cursor") from e


def _summary_after(group_by: str, order: str, cursor: str | None, days: ranges.DayRange) -> Any:
    """Where the previous page stopped, from the cursor (which names its grouping, range and order):
    its last key in key order, its last group's ``queries.Ranked`` by clicks."""
    if cursor is None:
        return None
    values = decode_cursor(cursor)
    if order == "clicks":
        if len(values) != 6:
            raise Unprocessable.field("cursor", "the cursor belongs to another order")
        cursor_group, start, end, key, cursor_order, clicks = parse_cursor(
            values, as_str, as_str, as_str, as_str, as_str, as_int
        )
    else:
        if len(values) != 4:
            raise Unprocessable.field("cursor", "the cursor belongs to another order")
        cursor_group, start, end, key = parse_cursor(values, as_str, as_str, as_str, as_str)
        cursor_order, clicks = "key", 0
    if (cursor_group, start, end, cursor_order) != (group_by, days.start.isoformat(), days.end.isoformat(), order):
        raise Unprocessable.field("cursor", "the cursor belongs to another group_by, date range or order")
    key_value = _cursor_key(group_by, key)
    return queries.Ranked(clicks, key_value) if order == "clicks" else key_value


async def _key_order_page(
    session: AsyncSession, q: queries.GroupQuery, limit: int
) -> tuple[list[tuple[Any, GroupTotals]], bool]:
    """Up to ``limit`` groups in key order after ``q.after``, and whether more follow."""
    groups: list[tuple[Any, GroupTotals]] = []
    async with contextlib.aclosing(queries.iter_groups(session, q)) as page:
        async for key, g in page:
            if len(groups) == limit:
                return groups, True
            groups.append((key, g))
    return groups, False


async def _ranked_page(
    session: AsyncSession, q: queries.GroupQuery, after: queries.Ranked | None, limit: int
) -> tuple[list[tuple[Any, GroupTotals]], bool, queries.Ranked | None]:
    """Up to ``limit`` groups by counted clicks after ``after``, whether more follow, and where the
    page stopped (the ranking's own figures, so the next page starts where this one ranked)."""
    ranked = await queries.ranked_keys(session, q, after, limit + 1)
    more = len(ranked) > limit
    ranked = ranked[:limit]
    if not ranked:
        return [], False, None
    only = queries.GroupQuery(q.tenant, q.group_by, q.days, q.week_start_index, keys=tuple(r.key for r in ranked))
    found = {key: g async for key, g in queries.iter_groups(session, only)}
    return [(r.key, found.get(r.key) or GroupTotals()) for r in ranked], more, ranked[-1]


#: Groupings whose summary items are built straight from their stats rows (:func:`_row_page`):
#: the paged ones, tens of thousands of groups at 100,000 employees.
ROW_GROUPS = frozenset({"employee", "content"})


def _by_key(rows: Sequence[Any]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = {}
    for row in rows:
        got = out.get(row[0])
        if got is None:
            out[row[0]] = [row]
        else:
            got.append(row)
    return out


async def _row_page(
    session: AsyncSession, q: queries.GroupQuery, order: str, after: Any, limit: int, pricing: Pricing
) -> tuple[list[dict[str, Any]], bool, Any, GroupTotals | None]:
    """A page of employees or contents (the first ``limit`` after ``after`` by ``order``) as its
    items, their measures built straight from the page's rows (:func:`page_measures`); whether
    more follow; where the page stopped (its last ``Ranked`` by clicks, its last key in key
    order); and, when the page holds every group, the range's totals (its rows summed)."""
    if order == "clicks":
        ranked = await queries.ranked_keys(session, q, after, limit + 1)
        more = len(ranked) > limit
        ranked = ranked[:limit]
        keys: list[Any] = [r.key for r in ranked]
        rows: Sequence[Any] = []
        conversions: queries.Conversions = {}
        if keys:
            only = queries.GroupQuery(q.tenant, q.group_by, q.days, q.week_start_index, keys=tuple(keys))
            rows, conversions = await queries.page_rows(session, only)
        last: Any = ranked[-1] if ranked else None
    else:
        paged = queries.GroupQuery(q.tenant, q.group_by, q.days, q.week_start_index, after=after, limit=limit + 1)
        rows, conversions = await queries.page_rows(session, paged)
        # the page's groups in key order (code-point order, as the rows come under COLLATE "C"),
        # the conversion-only ones among them
        keys = sorted({row[0] for row in rows} | conversions.keys())
        more = len(keys) > limit
        keys = keys[:limit]
        last = keys[-1] if keys else None
    grouped = _by_key(rows)
    items = [page_measures(key_str(k), grouped.get(k, ()), conversions.get(k, {}), pricing) for k in keys]
    everything = queries.totals_of(rows, conversions) if after is None and not more else None
    return items, more, last, everything


async def summary(
    session: AsyncSession,
    admin: Principal,
    group_by: str,
    raw_from: str | None,
    raw_to: str | None,
    limit: int = SUMMARY_DEFAULT_LIMIT,
    cursor: str | None = None,
    order: str = "key",
) -> dict[str, Any]:
    """One page of groups (``next_cursor`` for the rest) and the totals of the range.

    In key order a page stops reading at its last group, so a year by employee costs a page, not
    70,000 groups. By ``clicks`` (counted clicks, most first, ties in key order) one narrow pass ranks
    the range's groups and only the page's groups are read in full: the top 10 costs the ranking
    plus 10 groups. A page of employees or contents has its items built straight from its rows.

    The page's groups, the ranking that chose them and the range's totals come from one snapshot, so
    a consumer batch committing between those reads never shows groups that outgrow the totals."""
    if order not in ORDERS:
        raise Unprocessable.field("order", f"one of {', '.join(ORDERS)}")
    await one_snapshot(session)
    settings = await load_tenant_settings(session, admin.tenant_id)
    days = ranges.resolve(raw_from, raw_to, settings.zone, today_in(settings))
    after = _summary_after(group_by, order, cursor, days)
    pricing = Pricing.of(settings)
    position: list[Any] = [group_by, days.start.isoformat(), days.end.isoformat()]
    dimension = group_by in queries.DIMENSION_GROUPS
    q = summary_query(admin.tenant_id, group_by, days, settings)
    everything: GroupTotals | None
    last: Any  # a ``queries.Ranked`` by clicks, a key in key order
    if group_by in ROW_GROUPS:
        items, more, last, everything = await _row_page(session, q, order, after, limit, pricing)
    else:
        if order == "clicks":
            page, more, last = await _ranked_page(session, q, after, limit)
        else:
            paged = summary_query(admin.tenant_id, group_by, days, settings, after, limit + 1)
            page, more = await _key_order_page(session, paged, limit)
            last = page[-1][0] if page else None
        items = [group_measures(key, g, group_by, pricing) for key, g in page]
        everything = merge(g for _k, g in page) if after is None and not more else None  # the page is every group
    if order == "clicks":
        if last is not None:
            position += [key_str(last.key) or "", "clicks", last.clicks]
    else:
        position.append(key_str(last) or "")
    if everything is None and dimension:
        # country, device, referrer: the totals of those roll-ups (a few hundred values at most)
        everything = merge([g async for _k, g in queries.iter_groups(session, q)])
    elif everything is None:
        everything = await queries.totals(session, q)
    return {
        "from": days.start.isoformat(),
        "to": days.end.isoformat(),
        "group_by": group_by,
        "order": order,
        "time_zone": settings.time_zone,
        "base_currency": settings.base_currency,
        "items": items,
        "totals": measures(everything, pricing, with_shares=not dimension),
        "next_cursor": encode_cursor(position) if more else None,
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
    """ROI of the range: the value (conversions, earned media) and the cost (rewards redeemed) are
    read from one snapshot, so the ratio is never of a value and a cost from different moments."""
    await one_snapshot(session)
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
    """The adoption report: its counts (eligible, enrolled, sharers) and the rates between them come
    from one snapshot (:func:`adoption_of` reads them in several statements)."""
    await one_snapshot(session)
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
    counts = await queries.adoption_counts(session, tenant, days, as_of, hi, settings.week_start_index)
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
