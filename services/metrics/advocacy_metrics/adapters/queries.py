"""Read-side SQL: summed aggregates per group, from the smallest roll-up that holds what is asked.

A query needs the group key's column, any filter's column, and the network (earned media value and
amplification are per network). Of the roll-ups holding those columns (``db.STAT_ROLLUPS``,
``db.CONVERSION_ROLLUPS``) the smallest is read: day/week/network summaries from
``network_daily_stats``, team from ``team_*``, content from ``content_*``, employee from
``employee_monthly_stats`` / ``daily_stats``. When a range spans whole calendar months and the group
is not a day or week, those months come from the monthly roll-up and only the edge days from the
daily one (a year by team reads ~12 x teams x networks rows). Country, device and referrer come
from the dimension roll-ups.

Groups come out in key order (text keys in code-point order, ``COLLATE "C"``), stats streamed
from a server-side cursor and merged with the (smaller) conversion sums, so the CSV export never
holds a whole result in memory.

Ranked by counted clicks (``ranked_keys``): a page of a range whose counted clicks all lie in one
calendar year is a range of ``ranking_clicks_yearly``'s index; a range holding most of its years'
clicks is ranked off those years' lists less each group's clicks outside it; otherwise the first
pages come from ``ranking_clicks_monthly``'s candidates (a threshold search), and past them one
narrow pass sums only ``clicks_counted`` per group over the same roll-ups and keeps the first N by
(clicks descending, key). The groups without counted clicks come last, in key order: the yearly
list's rows at 0 (it lists every group present in a year), or, for a range cutting its years, the
listed groups with 0 counted clicks in it that have a row in it. Then only those N groups' rows are read
for their measures (``GroupQuery.keys``), off the per-key indexes.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_metrics import domain
from advocacy_metrics.adapters import adoption_steps, backfills, ranking
from advocacy_metrics.adapters.ranges import DayRange
from advocacy_metrics.db import (
    ACCOUNT_FACTS,
    ADOPTION_DAYS,
    ADOPTION_STEPS,
    CONVERSION_ROLLUPS,
    DIMENSION_DAILY_CLICKS,
    DIMENSION_DAILY_CONVERSIONS,
    DIRECTORY_FACTS,
    MEMBER_FACTS,
    NETWORK_DAILY_STATS,
    REDEMPTION_FACTS,
    SHARER_DAYS,
    STAT_ROLLUPS,
    Rollup,
)
from advocacy_metrics.domain import VERDICTS, Sum
from advocacy_metrics.domain.adoption import STEP_COLUMNS, current_spans
from advocacy_metrics.domain.measures import GroupTotals, StatSums

GROUP_BYS = ("day", "week", "network", "team", "content", "employee", "country", "device", "referrer", "reason")
DIMENSION_GROUPS = frozenset({"country", "device", "referrer", "reason"})
TIME_GROUPS = frozenset({"day", "week"})
_KEY_COLUMN = {"network": "network", "team": "team", "content": "content_id", "employee": "employee_id"}


@dataclass(frozen=True, slots=True)
class GroupQuery:
    tenant: str
    group_by: str | None  # None: one group, the totals
    days: DayRange | None  # None: all time
    week_start_index: int = 0
    employee_id: str | None = None
    content_id: str | None = None
    after: Any = None  # only groups whose key comes after this one (a page's cursor)
    limit: int | None = None  # at most this many groups are read (a page and one to know there is more)
    keys: tuple[Any, ...] | None = None  # only these groups (the ones a ranked page holds)

    @property
    def dimension(self) -> bool:
        return self.group_by in DIMENSION_GROUPS


#: Conversion sums per group: key -> (kind, currency) -> Sum.
Conversions = dict[Any, dict[tuple[str, str], Sum]]

_CUSTOM_PLANS = sa.text("SET LOCAL plan_cache_mode = force_custom_plan")


async def custom_plans(session: AsyncSession) -> None:
    """Plan this transaction's statements for their own values. The driver prepares statements, and
    after five runs PostgreSQL may keep a generic plan, one made without the values: for a page
    bounded by ``key <= $last`` or a range of days it guesses a third of the table and scans and
    sorts all of it (measured: a year's first page by employee 40 ms planned for its values, ~1 s
    generic). Re-planning costs well under a millisecond."""
    await session.execute(_CUSTOM_PLANS)


def _needed(q: GroupQuery) -> frozenset[str]:
    cols = {"network"}
    if q.group_by in _KEY_COLUMN:
        cols.add(_KEY_COLUMN[q.group_by])
    if q.employee_id is not None:
        cols.add("employee_id")
    if q.content_id is not None:
        cols.add("content_id")
    return frozenset(cols)


def pick(rollups: Sequence[Rollup], needed: frozenset[str], monthly: bool) -> Rollup | None:
    """The smallest roll-up of that period holding the needed columns."""
    fits = [r for r in rollups if r.monthly == monthly and needed <= set(r.columns)]
    return min(fits, key=lambda r: len(r.columns)) if fits else None


def split_months(days: DayRange) -> tuple[list[DayRange], tuple[date, date] | None]:
    """The whole calendar months inside ``days`` (first days of the first and last), and the edge
    day ranges around them. No whole month: (``[days]``, None)."""
    first = days.start if days.start.day == 1 else (days.start.replace(day=28) + timedelta(days=4)).replace(day=1)
    after_end = days.end + timedelta(days=1)
    last_end = days.end if after_end.day == 1 else after_end.replace(day=1) - timedelta(days=1)
    if first > last_end:
        return [days], None
    edges = []
    if days.start < first:
        edges.append(DayRange(days.start, first - timedelta(days=1)))
    if last_end < days.end:
        edges.append(DayRange(last_end + timedelta(days=1), days.end))
    return edges, (first, last_end.replace(day=1))


def _branch(r: Rollup, q: GroupQuery, carry: Sequence[str], where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    t = r.table
    cond = [t.c.tenant_id == q.tenant, *where]
    if q.employee_id is not None:
        cond.append(t.c.employee_id == q.employee_id)
    if q.content_id is not None:
        cond.append(t.c.content_id == q.content_id)
    return sa.select(t.c[r.period].label("day"), *(t.c[c] for c in carry)).where(*cond)


def _source(q: GroupQuery, rollups: Sequence[Rollup], values: Sequence[str]) -> sa.Subquery:
    """The rows to sum: columns ``day`` (a day, or a month's first day), the needed columns, ``values``."""
    needed = _needed(q)
    carry = [*sorted(needed), *values]
    daily = pick(rollups, needed, monthly=False)
    assert daily is not None  # the finest roll-up holds every column
    monthly = None if q.group_by in TIME_GROUPS else pick(rollups, needed, monthly=True)
    if monthly is None:
        where = [] if q.days is None else [daily.table.c.day.between(q.days.start, q.days.end)]
        return _branch(daily, q, carry, where).subquery()
    if q.days is None:
        return _branch(monthly, q, carry, []).subquery()
    edges, months = split_months(q.days)
    if months is None:
        return _branch(daily, q, carry, [daily.table.c.day.between(q.days.start, q.days.end)]).subquery()
    parts = [_branch(monthly, q, carry, [monthly.table.c.month.between(*months)])]
    if edges:
        parts.append(_branch(daily, q, carry, [sa.or_(*(daily.table.c.day.between(e.start, e.end) for e in edges))]))
    return (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()


def _dimension_source(q: GroupQuery, table: sa.Table, values: Sequence[str]) -> sa.Subquery:
    cond = [table.c.tenant_id == q.tenant, table.c.dimension == q.group_by]
    if q.days is not None:
        cond.append(table.c.day.between(q.days.start, q.days.end))
    return sa.select(table.c.day, table.c.value, *(table.c[c] for c in values)).where(*cond).subquery()


def week_of(day: sa.ColumnElement[Any], week_start_index: int) -> sa.ColumnElement[date]:
    """The first day of the week of ``day`` (0 = weeks start on Monday ... 6 = Sunday)."""
    offset = (sa.cast(sa.extract("isodow", day), sa.Integer) + (6 - week_start_index)) % 7
    return sa.type_coerce(day - offset, sa.Date)


def _key(src: sa.Subquery, q: GroupQuery) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """(the group key, the expression to order by)."""
    if q.group_by is None:
        k: sa.ColumnElement[Any] = sa.literal_column("''")
        return k, k
    if q.group_by == "day":
        return src.c.day, src.c.day
    if q.group_by == "week":
        w = week_of(src.c.day, q.week_start_index)
        return w, w
    col = src.c.value if q.dimension else src.c[_KEY_COLUMN[q.group_by]]
    # grouped and ordered under one collation, the one of the roll-ups' page indexes (migration 0006)
    in_c = sa.collate(col, "C")
    return in_c, in_c


def _only_keys(src: sa.Subquery, q: GroupQuery) -> list[sa.ColumnElement[bool]]:
    """``q.keys``' condition on the source rows: the key's own column (no collation: equality is
    the same under any, and the per-key indexes are on the plain column), so it reaches each
    roll-up's index inside the union."""
    if q.keys is None or q.group_by is None:
        return []
    if q.group_by == "day":
        col: sa.ColumnElement[Any] = src.c.day
    elif q.group_by == "week":
        col = week_of(src.c.day, q.week_start_index)
    else:
        col = src.c.value if q.dimension else src.c[_KEY_COLUMN[q.group_by]]
    return [col.in_(q.keys)]


def _stats_source(q: GroupQuery, counters: Sequence[str]) -> sa.Subquery:
    return _dimension_source(q, DIMENSION_DAILY_CLICKS, counters) if q.dimension else _source(q, STAT_ROLLUPS, counters)


def _conversion_source(q: GroupQuery, values: Sequence[str]) -> sa.Subquery:
    if q.dimension:
        return _dimension_source(q, DIMENSION_DAILY_CONVERSIONS, values)
    return _source(q, CONVERSION_ROLLUPS, values)


def _stats_select(q: GroupQuery, up_to: Any = None) -> sa.Select[Any]:
    """The stats rows of every group in range (after ``q.after``, up to ``up_to`` when given), in
    key order, one row per group and network."""
    counters = (
        [f"clicks_{v}" for v in VERDICTS] if q.dimension else ["shares", "reach", *(f"clicks_{v}" for v in VERDICTS)]
    )
    src = _stats_source(q, counters)
    key, order = _key(src, q)
    network = sa.literal_column("''") if q.dimension else src.c.network
    # every sum a bigint: the int4 counters' sums are, and reach's (a bigint column, whose sum is a
    # numeric) is cast, so the driver decodes integers, not a Decimal a row (past 2^63 the cast fails)
    sums = [sa.func.coalesce(sa.cast(sa.func.sum(src.c[c]), sa.BigInteger), 0) for c in counters]
    group = [key] if q.group_by is not None else []
    if not q.dimension:
        group.append(network)
    return (
        sa.select(key.label("key"), network.label("network"), *sums)
        .where(*_after(q, order), *_up_to(q, order, up_to), *_only_keys(src, q))
        .group_by(*group)
        .order_by(*([order] if q.group_by is not None else []))
    )


def _page_keys_select(q: GroupQuery) -> sa.Select[Any]:
    """The first ``q.limit`` keys with stats rows after ``q.after``: key columns only, so the
    planner walks the roll-ups' page indexes (migration 0006) in key order and stops at the limit."""
    src = _stats_source(q, [])
    key, order = _key(src, q)
    return sa.select(key.label("key")).where(*_after(q, order)).group_by(key).order_by(order).limit(q.limit)


def _up_to(q: GroupQuery, order: sa.ColumnElement[Any], up_to: Any) -> list[sa.ColumnElement[bool]]:
    return [] if up_to is None else [order <= _key_value(q, up_to)]


def _after(q: GroupQuery, order: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
    """The page condition: keys after the cursor's, in the order groups come out."""
    if q.after is None or q.group_by is None:
        return []
    return [order > _key_value(q, q.after)]


def _key_value(q: GroupQuery, key: Any) -> Any:
    """A key as a value comparable with the group key (text keys under COLLATE "C")."""
    return key if q.group_by in TIME_GROUPS else sa.collate(sa.literal(key), "C")


async def _conversions(session: AsyncSession, q: GroupQuery, up_to: Any = None) -> Conversions:
    values = ("kind", "currency", "conversions", "amount")
    src = _conversion_source(q, values)
    key, order = _key(src, q)
    res = await session.execute(
        sa.select(
            key.label("key"), src.c.kind, src.c.currency, sa.func.sum(src.c.conversions), sa.func.sum(src.c.amount)
        )
        .where(
            *_after(q, order),
            *_up_to(q, order, up_to),
            *_only_keys(src, q),
        )
        .group_by(*([key] if q.group_by is not None else []), src.c.kind, src.c.currency)
    )
    out: defaultdict[Any, dict[tuple[str, str], Sum]] = defaultdict(dict)
    for k, kind, currency, n, amount in res.all():
        out[k][(kind, currency)] = Sum(int(n), Decimal(amount))
    return out


@dataclass(frozen=True, slots=True)
class Ranked:
    """Where a group stands in the ranking by counted clicks (a ranked page's cursor)."""

    clicks: int
    key: Any


#: :func:`custom_plans`, and the memory of a hash: a cut range's clicks outside it are summed per
#: group in one (54k employees from 128k rows at 100,000 employees, Feb 15-Dec 31) where the planner
#: expects 200 groups (a sum over a union has no statistics), and at the default 4 MB (x2 for a hash)
#: it spilled to disk in 5 batches. And no parallel workers: the page's figures after the ranking
#: (1,000 groups' roll-up rows) got a parallel plan, whose Gather on a busy 2-core machine cost more
#: than it saved (employee Feb 15-Dec 31 middle page 157 -> 133 ms p50, N=20 interleaved, load
#: ~1; content pages equal). One round trip, for the ranking's transaction only.
_RANKING_SETTINGS = sa.text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('work_mem', '64MB', true), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)
#: Which way each ranking was answered ("year": a range of the yearly list; "threshold": from
#: candidates; "full": every group summed). Tests assert each ran; the answer is the same either way.
RANKING_PATHS: Counter[str] = Counter()
#: Past this many candidates the full ranking costs less (flat distributions, deep pages).
MAX_CANDIDATES = 2000
#: The first round's candidates: buckets down to the highest one minus this.
FIRST_ROUND_DEPTH = 2
#: A first page this short (the console's top 10s) tries the threshold search before the lists less
#: the clicks outside: a few candidates against every listed group.
TOP_N = 100


async def ranked_keys(session: AsyncSession, q: GroupQuery, after: Ranked | None, n: int) -> list[Ranked]:
    """The first ``n`` groups in range by counted clicks, most first, ties in key order, after
    ``after``. Every group the key order has is ranked: those with no counted click in range (only
    shares, other verdicts or conversions) rank last with 0 clicks, in key order. ``q.after``,
    ``q.limit`` and ``q.keys`` are ignored.

    By employee or content (no filter), once the lists are filled, the calendar years the range
    touches decide (:func:`_split`, one index range of ``network_daily_stats``):

    - every counted click of its one year lies in the range (a whole year, a year to date): a
      walk of ``ranking_clicks_yearly`` from the cursor down (:func:`_year_ranked`);
    - fewer of those years' counted clicks lie outside the range than inside (Feb 15-Dec 31, a
      range across New Year holding most of both years' clicks): the years' lists minus the
      clicks outside (:func:`_complement_ranked`), linear in the lists and the outside's rows
      (a top list of up to :data:`TOP_N` tries the threshold search first);
    - otherwise candidates from ``ranking_clicks_monthly`` (:func:`_threshold_ranked`) and,
      when they cannot prove the answer, every group summed (:func:`ranked_keys_scan`).

    The groups without counted clicks come from the yearly lists too: their rows at 0 (a year),
    or the listed groups at 0 in range with a row in it (:func:`_zero_keys`). Every answer is exact."""
    assert q.group_by is not None
    await session.execute(_RANKING_SETTINGS)
    q = GroupQuery(q.tenant, q.group_by, q.days, q.week_start_index, q.employee_id, q.content_id)
    listed = n > 0 and bool(_ranking_lists(q))
    lists = (ranking.AGGREGATE, ranking.YEARLY_AGGREGATE)
    pending = await backfills.pending_of(session, q.tenant, lists) if listed else frozenset(lists)  # none read
    monthly = ranking.AGGREGATE not in pending
    top = after is None and n <= TOP_N  # a top list: the threshold search reads a few candidates
    if ranking.YEARLY_AGGREGATE not in pending:
        split = await _split(session, q)
        if split.clicks_outside == 0 and len(split.years) == 1:
            RANKING_PATHS["year"] += 1
            return await _year_ranked(session, q, split.years[0], after, n)
        if monthly and split.clicks_outside < split.clicks_inside:
            found = await _threshold_ranked(session, q, after, n) if top else None
            if found is not None:
                RANKING_PATHS["threshold"] += 1
                return found
            RANKING_PATHS["complement"] += 1
            return await _complement_ranked(session, q, split, after, n)
    if monthly:
        found = await _threshold_ranked(session, q, after, n)
        if found is not None:
            RANKING_PATHS["threshold"] += 1
            return found
    RANKING_PATHS["full"] += 1
    return await ranked_keys_scan(session, q, after, n)


def _ranking_lists(q: GroupQuery) -> list[date]:
    """The months of ``ranking_clicks_monthly`` that overlap the range (none: the list does not apply)."""
    filtered = q.employee_id is not None or q.content_id is not None
    if q.group_by not in domain.RANKED_GROUPS or q.days is None or filtered:
        return []
    months = []
    month = domain.month_of(q.days.start)
    while month <= q.days.end:
        months.append(month)
        month = (month + timedelta(days=31)).replace(day=1)
    return months


@dataclass(frozen=True, slots=True)
class _Split:
    """The calendar years a range touches, their days outside it, and their counted clicks in and
    outside it."""

    years: tuple[int, ...]
    outside: tuple[DayRange, ...]
    clicks_inside: int
    clicks_outside: int


async def _split(session: AsyncSession, q: GroupQuery) -> _Split:
    """The range's calendar years and their counted clicks in and outside it, from
    ``network_daily_stats`` (a few rows a day: one index range)."""
    assert q.days is not None
    first, last = date(q.days.start.year, 1, 1), date(q.days.end.year, 12, 31)
    outside = []
    if first < q.days.start:
        outside.append(DayRange(first, q.days.start - timedelta(days=1)))
    if q.days.end < last:
        outside.append(DayRange(q.days.end + timedelta(days=1), last))
    t = NETWORK_DAILY_STATS
    inside = t.c.day.between(q.days.start, q.days.end)
    row = (
        await session.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(t.c.clicks_counted).filter(inside), 0),
                sa.func.coalesce(sa.func.sum(t.c.clicks_counted).filter(~inside), 0),
            ).where(t.c.tenant_id == q.tenant, t.c.day.between(first, last))
        )
    ).one()
    years = tuple(range(first.year, last.year + 1))
    return _Split(years, tuple(outside), int(row[0]), int(row[1]))


async def _year_ranked(session: AsyncSession, q: GroupQuery, year: int, after: Ranked | None, n: int) -> list[Ranked]:
    """A page off ``ranking_clicks_yearly`` (every counted click of ``year`` lies in the range), the
    groups without counted clicks included: the list's rows at 0, in key order."""
    assert q.group_by is not None
    cursor = None if after is None else (after.clicks, after.key)
    found = [Ranked(c, k) for k, c in await ranking.year_page(session, q.tenant, q.group_by, year, cursor, n)]
    if found and found[-1].clicks == 0:
        RANKING_PATHS["zero tail"] += 1
    return found


async def _complement_ranked(
    session: AsyncSession, q: GroupQuery, split: _Split, after: Ranked | None, n: int
) -> list[Ranked]:
    """A page of the groups with counted clicks in range, each one's clicks being its years' listed
    count minus its clicks in those years outside the range (:func:`_in_range_by_list`), then the
    groups without (:func:`_zero_keys`). One statement: every listed group's clicks in range are
    computed once; the groups without are read only when the counted ones after the cursor are
    fewer than ``n`` (a one-time filter on their branch)."""
    listed = _in_range_by_list(q, split).cte("listed").prefix_with("MATERIALIZED")
    zero = _zero_keys(q, listed, after, n).subquery()
    if after is not None and after.clicks <= 0:  # past every counted group
        res = await session.execute(sa.select(zero.c.key))
        RANKING_PATHS["zero tail"] += 1
        return [Ranked(0, k) for k in res.scalars().all()]
    key, clicks = listed.c.key, listed.c.clicks
    cond = [clicks > 0]
    if after is not None:
        at = sa.collate(sa.literal(after.key), "C")
        cond.append(sa.or_(clicks < after.clicks, sa.and_(clicks == after.clicks, sa.collate(key, "C") > at)))
    page = (
        sa.select(key, clicks)
        .where(*cond)
        .order_by(clicks.desc(), sa.collate(key, "C"))
        .limit(n)
        .cte("page")
        .prefix_with("MATERIALIZED")
    )
    short = sa.select(sa.func.count()).select_from(page).scalar_subquery() < n
    res = await session.execute(
        sa.union_all(
            sa.select(page.c.key, page.c.clicks, sa.literal(0).label("part")),
            sa.select(zero.c.key, sa.literal(0, sa.BigInteger), sa.literal(1)).where(short),
        )
    )
    rows = res.all()
    # the branches' rows in the ranking's order (keys in code-point order, as COLLATE "C")
    counted_rows = sorted((Ranked(int(c), k) for k, c, part in rows if part == 0), key=lambda r: (-r.clicks, r.key))
    zero_rows = [Ranked(0, k) for k in sorted(k for k, _c, part in rows if part == 1)]
    if len(counted_rows) < n:
        RANKING_PATHS["zero tail"] += 1
    return (counted_rows + zero_rows)[:n]


def _in_range_by_list(q: GroupQuery, split: _Split) -> sa.Select[Any]:
    """(key, clicks) of every group listed in ``ranking_clicks_yearly`` for the range's years (every
    group present in them, rows at 0 included): its listed count less its counted clicks in those
    years outside the range (their whole months from ``ranking_clicks_monthly``, their edge days from
    the daily roll-up). Counts are never negative, so a group with clicks in range has clicks > 0
    here, and one present in range without has 0."""
    assert q.group_by is not None
    yearly = ranking.years_clicks(q.tenant, q.group_by, split.years).subquery()
    parts: list[sa.Select[Any]] = []
    for days in split.outside:
        edges, whole = split_months(days)
        if whole is not None:
            parts.append(ranking.months_clicks(q.tenant, q.group_by, *whole))
        for edge in edges:
            only = GroupQuery(q.tenant, q.group_by, edge)
            src = _stats_source(only, ["clicks_counted"])
            column = src.c[_KEY_COLUMN[q.group_by]]
            parts.append(sa.select(column.label("key"), src.c.clicks_counted.label("clicks")))
    if not parts:
        return sa.select(yearly.c.key, yearly.c.clicks)
    rows = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()
    # summed as int4 (a bigint sum: int4's own sum type): a sum of bigints accumulates in 128 bits
    # or numeric, ~20 % of this statement at full scale (123 -> 100 ms, Feb 15-Dec 31 by employee).
    # One row is a group's clicks of one month or one day and network: far below 2^31 (past it the
    # cast fails; it cannot wrap)
    out = (
        sa.select(rows.c.key, sa.func.sum(sa.cast(rows.c.clicks, sa.Integer)).label("clicks"))
        .group_by(rows.c.key)
        .subquery()
    )
    clicks = yearly.c.clicks - sa.func.coalesce(out.c.clicks, 0)
    return sa.select(yearly.c.key, clicks.label("clicks")).select_from(yearly.outerjoin(out, out.c.key == yearly.c.key))


def _zero_keys(q: GroupQuery, listed: sa.CTE, after: Ranked | None, n: int) -> sa.Select[Any]:
    """The first ``n`` groups of the range, in key order, with 0 counted clicks in it, after
    ``after``: of ``listed`` (:func:`_in_range_by_list`: every group present in the range's years),
    those at 0 that have a stats or conversion row in range (an index probe each, as
    :func:`ranked_keys_scan` counts groups). Linear in the listed groups (a filter of the
    materialized rows), not in the roll-ups' rows."""
    assert q.group_by is not None
    column = _KEY_COLUMN[q.group_by]
    stats = _stats_source(q, [])
    conversions = _conversion_source(q, [])
    key = sa.collate(listed.c.key, "C")
    # the key's own column (equality is the same under any collation): the per-key indexes are on it
    present = [sa.exists().where(src.c[column] == listed.c.key) for src in (stats, conversions)]
    cond = [listed.c.clicks == 0, sa.or_(*present)]
    if after is not None and after.clicks <= 0:
        cond.append(key > _key_value(q, after.key))
    return sa.select(listed.c.key.label("key")).where(*cond).order_by(key).limit(n)


async def _threshold_ranked(session: AsyncSession, q: GroupQuery, after: Ranked | None, n: int) -> list[Ranked] | None:
    """Fagin's threshold algorithm over the range's months, by ``bucket`` = floor(log2 clicks).

    A group none of whose months in the lists reaches bucket ``b`` has at most ``2^b - 1`` counted
    clicks in each, so at most ``tau = |months| x (2^b - 1)`` in the range (a partial month's whole
    count bounds its days in range: counts are never negative). The groups that do reach it are
    the candidates; their exact clicks in range come from the roll-ups, off the per-key indexes.
    When the n-th candidate after the cursor has more than ``tau`` (strictly: a tie with an
    unseen group could order either way), no unseen group can be in the answer. Otherwise ``b``
    goes down one. None: past ``b`` = 0 or :data:`MAX_CANDIDATES`, the caller sums every group."""
    assert q.group_by is not None
    months = _ranking_lists(q)
    top = await ranking.top_bucket(session, q.tenant, q.group_by, months)
    if top is None:
        return None
    clicks: dict[Any, int] = {}
    hi = 64  # above any bucket of a bigint
    b = max(top - FIRST_ROUND_DEPTH, 0)
    while b >= 0:
        new = [k for k in await ranking.keys_from(session, q.tenant, q.group_by, months, b, hi) if k not in clicks]
        if len(clicks) + len(new) > MAX_CANDIDATES:
            return None
        if new:
            clicks.update(dict.fromkeys(new, 0))
            clicks.update(await _clicks_of(session, q, new))
        ranked = sorted(
            (Ranked(c, k) for k, c in clicks.items() if after is None or _ranks_after(c, k, after)),
            key=lambda r: (-r.clicks, r.key),
        )
        tau = len(months) * (2**b - 1)
        if len(ranked) >= n and ranked[n - 1].clicks > tau:
            return ranked[:n]
        hi, b = b, b - 1
    return None


def _ranks_after(clicks: int, key: Any, after: Ranked) -> bool:
    """Whether a group comes after the cursor (keys compared in code-point order, as COLLATE "C")."""
    return clicks < after.clicks or (clicks == after.clicks and key > after.key)


async def _clicks_of(session: AsyncSession, q: GroupQuery, keys: list[str]) -> dict[str, int]:
    """The counted clicks in range of these groups: the range's whole months from the ranking list
    (a row per key and month), its edge days from the daily roll-up, off its per-key index."""
    assert q.group_by is not None and q.days is not None
    edges, whole = split_months(q.days)
    out: defaultdict[str, int] = defaultdict(int)
    if whole is not None:
        months = [m for m in _ranking_lists(q) if whole[0] <= m <= whole[1]]
        for k, n in (await ranking.clicks_in(session, q.tenant, q.group_by, months, keys)).items():
            out[k] += n
    for edge in edges:
        only = GroupQuery(q.tenant, q.group_by, edge, q.week_start_index, keys=tuple(keys))
        stats = _stats_source(only, ["clicks_counted"])
        key, _ = _key(stats, only)
        res = await session.execute(
            sa.select(key.label("key"), sa.func.sum(stats.c.clicks_counted))
            .where(*_only_keys(stats, only))
            .group_by(key)
        )
        for k, n in res.all():
            out[k] += int(n)
    return out


async def ranked_keys_scan(session: AsyncSession, q: GroupQuery, after: Ranked | None, n: int) -> list[Ranked]:
    """:func:`ranked_keys` by summing every group in range: one pass over the roll-ups'
    ``clicks_counted`` alone (no per-network rows, no conversions' values)."""
    stats = _stats_source(q, ["clicks_counted"])
    conversions = _conversion_source(q, ["conversions"])
    stats_key, _ = _key(stats, q)
    conversion_key, _ = _key(conversions, q)
    rows = sa.union_all(
        sa.select(stats_key.label("key"), stats.c.clicks_counted.label("clicks")),
        sa.select(conversion_key.label("key"), sa.literal(0, sa.BigInteger).label("clicks")),
    ).subquery()
    key = rows.c.key  # under the branches' collation, "C" for text keys
    clicks = sa.func.sum(rows.c.clicks)
    having = []
    if after is not None:
        at = _key_value(q, after.key)
        having.append(sa.or_(clicks < after.clicks, sa.and_(clicks == after.clicks, key > at)))
    res = await session.execute(
        sa.select(key.label("key"), clicks.label("clicks"))
        .group_by(key)
        .having(*having)
        .order_by(clicks.desc(), key)
        .limit(n)
    )
    return [Ranked(int(c), k) for k, c in res.all()]


def _stat_sums(row: Any, dimension: bool) -> StatSums:
    """A stats row's sums (every one a bigint, :func:`_stats_select`)."""
    if dimension:
        return StatSums(0, 0, dict(zip(VERDICTS, row[2:], strict=True)))
    return StatSums(row[2], row[3], dict(zip(VERDICTS, row[4:], strict=True)))


async def _rows(result: Any) -> AsyncIterator[Any]:
    """Rows off the server-side cursor a thousand at a time (not one await per row)."""
    async for part in result.partitions(1000):
        for row in part:
            yield row


async def iter_groups(session: AsyncSession, q: GroupQuery) -> AsyncGenerator[tuple[Any, GroupTotals], None]:
    """Every group with activity in range, in key order (with ``q.limit``: at least the first
    ``q.limit`` of them, when there are that many)."""
    if (q.limit is not None and q.group_by is not None) or q.keys is not None:
        # a page (or a ranked page's groups): rows at once, no server-side cursor
        rows, conversions = await page_rows(session, q)

        async def listed() -> AsyncIterator[Any]:
            for row in rows:
                yield row

        async with contextlib.aclosing(_merge(listed(), conversions, q.dimension)) as groups:
            async for item in groups:
                yield item
        return
    conversions = await _conversions(session, q)
    result = await session.stream(_stats_select(q))
    try:
        async with contextlib.aclosing(_merge(_rows(result), conversions, q.dimension)) as groups:
            async for group_key, g in groups:
                yield group_key, g
    finally:
        await result.close()  # a reader that stops early (one page) frees the connection's cursor


async def page_rows(session: AsyncSession, q: GroupQuery) -> tuple[Sequence[Any], Conversions]:
    """The stats rows of a bounded read (key order, one a group and network: key, network,
    *``domain.STAT_FIELDS``) and its conversion sums per group, read at once: one group (the
    totals, ``q.group_by`` None), ``q.keys`` (a ranked page's groups), or a page in key order
    (``q.limit``): its keys first (the first ``q.limit``
    with stats rows, off an index), then the stats and the conversions of the groups up to the last
    of them only, so a page of a year by content reads that page's groups, not the whole year's,
    and sorts nothing. Such a page holds every group up to its last key: at least ``q.limit``
    groups when there are that many, and conversion-only groups among them."""
    up_to = None
    if q.keys is None and q.limit is not None:
        await custom_plans(session)
        keys = (await session.execute(_page_keys_select(q))).scalars().all()
        up_to = keys[-1] if len(keys) >= q.limit else None
    rows = (await session.execute(_stats_select(q, up_to))).all()
    return rows, await _conversions(session, q, up_to=up_to)


def totals_of(rows: Sequence[Any], conversions: Conversions) -> GroupTotals:
    """Every group of a read (:func:`page_rows`) summed into one, stats kept per network."""
    out = GroupTotals()
    for row in rows:
        out.network(row[1]).add(_stat_sums(row, False))
    for sums in conversions.values():
        for (kind, currency), c in sums.items():
            out.conversion(kind, currency).add(c.count, c.amount)
    return out


async def _merge(
    rows: AsyncIterator[Any], conversions: dict[Any, dict[tuple[str, str], Sum]], dimension: bool
) -> AsyncGenerator[tuple[Any, GroupTotals], None]:
    """Stats rows (in key order) and the conversion sums, merged into groups in key order."""
    pending = sorted(conversions)  # groups with conversions, some perhaps without stats rows
    nxt = 0  # pending[:nxt] are out
    current: Any = None
    group: GroupTotals | None = None
    async for row in rows:
        key = row[0]
        if group is not None and key != current:
            while nxt < len(pending) and pending[nxt] < current:
                yield pending[nxt], GroupTotals(conversions=conversions[pending[nxt]])
                nxt += 1
            if nxt < len(pending) and pending[nxt] == current:
                nxt += 1
            group.conversions = conversions.get(current, {})
            yield current, group
            group = None
        if group is None:
            current, group = key, GroupTotals()
        group.by_network[row[1]] = _stat_sums(row, dimension)
    if group is not None:
        while nxt < len(pending) and pending[nxt] < current:
            yield pending[nxt], GroupTotals(conversions=conversions[pending[nxt]])
            nxt += 1
        if nxt < len(pending) and pending[nxt] == current:
            nxt += 1
        group.conversions = conversions.get(current, {})
        yield current, group
    for k in pending[nxt:]:
        yield k, GroupTotals(conversions=conversions[k])


async def totals(session: AsyncSession, q: GroupQuery) -> GroupTotals:
    """One group: everything in range (with the query's filters), stats kept per network. A row a
    network: read at once (:func:`page_rows`), not off a server-side cursor (~3 ms less a summary)."""
    q = GroupQuery(q.tenant, None, q.days, q.week_start_index, q.employee_id, q.content_id)
    return totals_of(*await page_rows(session, q))


async def audience(session: AsyncSession, tenant: str, employee: str) -> dict[str, int]:
    t = ACCOUNT_FACTS
    res = await session.execute(
        sa.select(t.c.network, t.c.audience_size).where(t.c.tenant_id == tenant, t.c.employee_id == employee)
    )
    return {n: int(size) for n, size in res.all()}


async def rewards_redeemed(session: AsyncSession, tenant: str, lo: datetime, hi: datetime) -> dict[str, Decimal]:
    """Money value of rewards redeemed in [lo, hi) and not cancelled, per currency."""
    t = REDEMPTION_FACTS
    res = await session.execute(
        sa.select(t.c.currency, sa.func.sum(t.c.amount))
        .where(t.c.tenant_id == tenant, t.c.redeemed_at >= lo, t.c.redeemed_at < hi, t.c.cancelled_at.is_(None))
        .group_by(t.c.currency)
    )
    return {c: Decimal(a) for c, a in res.all() if c}


def _enrolled_members(tenant: str, before: datetime) -> sa.Subquery:
    m = MEMBER_FACTS
    latest = (
        sa.select(m.c.employee_id, m.c.enrolled)
        .where(m.c.tenant_id == tenant, m.c.updated_at < before)
        .ext(distinct_on(m.c.employee_id))
        .order_by(m.c.employee_id.desc(), m.c.updated_at.desc())
        .subquery()
    )
    return sa.select(latest.c.employee_id).where(latest.c.enrolled).subquery()


def _active_in_directory(tenant: str, before: datetime) -> sa.Subquery:
    """The eligible workforce: people whose latest directory record before ``before`` is active."""
    d = DIRECTORY_FACTS
    latest = (
        sa.select(d.c.employee_id, d.c.active)
        .where(d.c.tenant_id == tenant, d.c.updated_at < before)
        .ext(distinct_on(d.c.employee_id))
        .order_by(d.c.employee_id.desc(), d.c.updated_at.desc())
        .subquery()
    )
    return sa.select(latest.c.employee_id).where(latest.c.active).subquery()


@dataclass
class AdoptionCounts:
    enrolled: int
    active_members: int
    active_sharers: int
    new_by_day: dict[date, int]
    lapsed_by_day: dict[date, int]
    eligible: int
    from_directory: bool
    shared_this_week: int
    shared_this_month: int


async def adoption_counts(
    session: AsyncSession,
    tenant: str,
    days: DayRange,
    as_of: date,
    before: datetime,
    week_start_index: int,
) -> AdoptionCounts:
    """The counts on ``as_of``: sums of ``adoption_steps`` up to it (at most one row per day of the
    tenant's life, whatever its headcount), or :func:`adoption_counts_scan` while the tenant's
    table is not filled yet. The steps keep ``as_of``'s 30 days, week (from ``week_start_index``,
    the tenant's week start, as they were written with) and month; ``before`` bounds the
    membership and directory facts ("who is enrolled / eligible"), ``days`` the new sharers and
    lapses per day."""
    if await backfills.pending(session, tenant, adoption_steps.AGGREGATE):
        return await adoption_counts_scan(session, tenant, days, as_of, before, week_start_index)
    d = DIRECTORY_FACTS
    from_directory = bool(
        await session.scalar(sa.select(sa.exists().where(d.c.tenant_id == tenant, d.c.updated_at < before)))
    )
    a = ADOPTION_STEPS
    sums = (
        await session.execute(
            sa.select(*(sa.func.coalesce(sa.func.sum(a.c[c]), 0) for c in STEP_COLUMNS)).where(
                a.c.tenant_id == tenant, a.c.day <= as_of
            )
        )
    ).one()
    n = dict(zip(STEP_COLUMNS, (int(v) for v in sums), strict=True))
    of = "in_directory" if from_directory else "enrolled"
    new_by_day, lapsed_by_day = await _adoption_days(session, tenant, days, as_of)
    return AdoptionCounts(
        n["enrolled"],
        n[f"active_{of}"],
        n["active"],
        new_by_day,
        lapsed_by_day,
        n[of],
        from_directory,
        n[f"week_{of}"],
        n[f"month_{of}"],
    )


async def adoption_counts_scan(
    session: AsyncSession,
    tenant: str,
    days: DayRange,
    as_of: date,
    before: datetime,
    week_start_index: int,
) -> AdoptionCounts:
    """The counts from the facts (before ``adoption_steps``; the tests' oracle), with the same
    arguments as :func:`adoption_counts`: the spans (30 days, this week, this month, each up to
    ``as_of``) come from the domain's :func:`~advocacy_metrics.domain.adoption.current_spans`, not
    from the steps' own arithmetic.

    One statement for the counts: the enrolled (the latest membership fact of each person) are
    read once, and the sharers of the earliest span once, as each sharer's last day in it: someone
    shared in a span starting on ``first`` when that last day is on or after ``first``, which counts
    the three spans in one hash aggregate instead of three sorted DISTINCTs."""
    await custom_plans(session)
    d = DIRECTORY_FACTS
    from_directory = bool(
        await session.scalar(sa.select(sa.exists().where(d.c.tenant_id == tenant, d.c.updated_at < before)))
    )
    enrolled = sa.select(_enrolled_members(tenant, before)).cte("enrolled")
    eligible = sa.select(_active_in_directory(tenant, before)).cte("eligible") if from_directory else enrolled
    spans = current_spans(as_of, week_start_index)
    active_from = spans[0]
    s = SHARER_DAYS
    last_days = (
        sa.select(s.c.employee_id, sa.func.max(s.c.day).label("last"))
        .where(s.c.tenant_id == tenant, s.c.day.between(min(spans), as_of))
        .group_by(s.c.employee_id)
        .subquery()
    )
    is_eligible = eligible.c.employee_id.is_not(None)
    count = sa.func.count()
    populations = [enrolled, eligible] if from_directory else [enrolled]
    everyone = [sa.select(sa.func.count()).select_from(t).scalar_subquery() for t in populations]
    row = (
        await session.execute(
            sa.select(
                *everyone,
                count.filter(last_days.c.last >= active_from),
                *(count.filter(is_eligible, last_days.c.last >= first) for first in spans),
            ).select_from(last_days.outerjoin(eligible, eligible.c.employee_id == last_days.c.employee_id))
        )
    ).one()
    n_enrolled, n_eligible = (int(row[0]), int(row[len(everyone) - 1]))  # the same count without a directory
    active_sharers, active_members, shared_this_week, shared_this_month = (int(n or 0) for n in row[len(everyone) :])
    new_by_day, lapsed_by_day = await _adoption_days(session, tenant, days, as_of)
    return AdoptionCounts(
        n_enrolled,
        active_members,
        active_sharers,
        new_by_day,
        lapsed_by_day,
        n_eligible,
        from_directory,
        shared_this_week,
        shared_this_month,
    )


async def _adoption_days(
    session: AsyncSession, tenant: str, days: DayRange, as_of: date
) -> tuple[dict[date, int], dict[date, int]]:
    """New sharers per day of ``days``, and lapses per day up to ``as_of``."""
    a = ADOPTION_DAYS
    res = await session.execute(
        sa.select(a.c.day, a.c.new_sharers, a.c.lapsed_sharers).where(
            a.c.tenant_id == tenant, a.c.day.between(days.start, days.end)
        )
    )
    new_by_day: dict[date, int] = {}
    lapsed_by_day: dict[date, int] = {}
    for day, new, lapsed in res.all():
        new_by_day[day] = int(new)
        if day <= as_of:
            lapsed_by_day[day] = int(lapsed)
    return new_by_day, lapsed_by_day
