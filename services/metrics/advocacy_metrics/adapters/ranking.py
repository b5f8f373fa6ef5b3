"""``ranking_clicks_monthly``: counted clicks per month of each employee and content, summed over
networks, with ``bucket`` = floor(log2 clicks) indexed (migration 0014); ``ranking_clicks_yearly``:
the same per calendar year, indexed in the ranking's order (migration 0015).

The consumer keeps both through ``aggregates.plan()`` (``domain.project_ranking``,
``domain.project_ranking_yearly``); this module has what reads them (the highest bucket of a set of
months, the keys at or above a bucket, a page of a year's ranking) and the backfills of a tenant
that had facts before the tables existed. The threshold search itself is in
:func:`advocacy_metrics.adapters.queries.ranked_keys`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import unnest_select
from advocacy_metrics import domain
from advocacy_metrics.db import RANKING_CLICKS_MONTHLY, RANKING_CLICKS_YEARLY

#: ``aggregate_backfills``' name for the monthly list (migration 0014).
AGGREGATE = "ranking_clicks"
#: ``aggregate_backfills``' name for the yearly list (migration 0015).
YEARLY_AGGREGATE = "ranking_clicks_yearly"

_TOP_BUCKET = sa.text(
    "SELECT max(b.bucket) FROM unnest(CAST(:months AS date[])) AS m(month), LATERAL ("
    "SELECT r.bucket FROM ranking_clicks_monthly r WHERE r.tenant_id = :t AND r.group_by = :g "
    "AND r.month = m.month ORDER BY r.bucket DESC LIMIT 1) b"
)
_KEYS_FROM = sa.text(
    "SELECT DISTINCT key FROM ranking_clicks_monthly WHERE tenant_id = :t AND group_by = :g "
    "AND month = ANY(CAST(:months AS date[])) AND bucket >= :lo AND bucket < :hi"
)


async def top_bucket(session: AsyncSession, tenant: str, group_by: str, months: list[date]) -> int | None:
    """The highest bucket of these months (one index probe per month); None: no row."""
    top = await session.scalar(_TOP_BUCKET, {"t": tenant, "g": group_by, "months": months})
    return None if top is None else int(top)


async def keys_from(
    session: AsyncSession, tenant: str, group_by: str, months: list[date], lo: int, hi: int
) -> list[str]:
    """The keys with a month among ``months`` whose bucket is in [lo, hi) (an index range)."""
    res = await session.execute(_KEYS_FROM, {"t": tenant, "g": group_by, "months": months, "lo": lo, "hi": hi})
    return list(res.scalars().all())


_CLICKS_IN = sa.text(
    "SELECT key, sum(clicks_counted) FROM ranking_clicks_monthly WHERE tenant_id = :t AND group_by = :g "
    "AND month = ANY(CAST(:months AS date[])) AND key = ANY(CAST(:keys AS varchar[])) GROUP BY key"
)


async def clicks_in(
    session: AsyncSession, tenant: str, group_by: str, months: list[date], keys: list[str]
) -> dict[str, int]:
    """The counted clicks of these keys in these (whole) months: primary-key probes, one row per
    key and month (the monthly roll-ups have one per network)."""
    res = await session.execute(_CLICKS_IN, {"t": tenant, "g": group_by, "months": months, "keys": keys})
    return {k: int(n) for k, n in res.all()}


def _fill(table: sa.Table, column: str, period: str, zero_rows: bool) -> sa.TextClause:
    """The tenant's rows of a ranking list from the monthly roll-ups: counted clicks per ``period``
    (``month`` or an expression of it, into the list's ``column``) and employee / content, rows > 0;
    ``zero_rows``: every group with a stats or conversion roll-up row in the period, at 0 when it has
    no counted click (the yearly list's rows at 0; an employee's conversions are in the daily roll-up,
    a content's in the monthly one)."""
    having = "" if zero_rows else "HAVING sum(clicks_counted) > 0 "
    conversions = {"employee": "", "content": ""}
    if zero_rows:
        conversions = {
            "employee": "UNION ALL SELECT date_trunc('month', day)::date, employee_id, 0 FROM daily_conversions "
            "WHERE tenant_id = :t ",
            "content": "UNION ALL SELECT month, content_id, 0 FROM content_monthly_conversions WHERE tenant_id = :t ",
        }
    branches = [
        f"SELECT CAST(:t AS varchar), '{g}', {period}, key, sum(clicks_counted) FROM ("  # noqa: S608 - ours
        f"SELECT month, {key} AS key, clicks_counted FROM {g}_monthly_stats WHERE tenant_id = :t "
        f"{conversions[g]}) r GROUP BY 3, 4 {having}"
        for g, key in (("employee", "employee_id"), ("content", "content_id"))
    ]
    return sa.text(
        f"WITH fill AS MATERIALIZED ({' UNION ALL '.join(branches)}), "  # noqa: S608 - ours
        # rows the fill no longer has go, the others are written only when they change: a backfill
        # over a filled list leaves no dead versions behind (a delete and insert of every row did)
        f"gone AS (DELETE FROM {table.name} r WHERE r.tenant_id = :t AND NOT EXISTS ("
        f"SELECT FROM fill f(t, g, p, k, n) WHERE f.g = r.group_by AND f.p = r.{column} AND f.k = r.key)) "
        # in (group_by, period, key) order: a period's rows land on adjacent pages, as the consumer's
        # live inserts put them (a month's rows are written during that month); from the hash
        # aggregate they came scattered, and a ranking reading one month's rows (a cut range's
        # outside) fetched a page per row (45k January rows on 6,258 pages at 100,000 employees)
        f"INSERT INTO {table.name} AS r (tenant_id, group_by, {column}, key, clicks_counted) "
        "SELECT * FROM fill ORDER BY 2, 3, 4 "
        f"ON CONFLICT (tenant_id, group_by, {column}, key) DO UPDATE SET clicks_counted = excluded.clicks_counted "
        "WHERE r.clicks_counted <> excluded.clicks_counted"
    )


_FILL_MONTHLY = _fill(RANKING_CLICKS_MONTHLY, "month", "month", zero_rows=False)
_FILL_YEARLY = _fill(RANKING_CLICKS_YEARLY, "year", "extract(year FROM month)::smallint", zero_rows=True)


async def _recompute(session: AsyncSession, fill: sa.TextClause, tenant: str) -> None:
    """The tenant's rows of a list anew by ``fill`` (the caller holds the tenant)."""
    await session.execute(fill, {"t": tenant})


async def recompute_tenant(session: AsyncSession, tenant: str) -> None:
    """The tenant's monthly rows anew from the monthly roll-ups (the backfill; the caller holds the tenant)."""
    await _recompute(session, _FILL_MONTHLY, tenant)


_YEAR_TOP_BUCKET = sa.text(
    "SELECT max(bucket) FROM ranking_clicks_yearly WHERE tenant_id = :t AND group_by = :g AND year = :y "
    "AND bucket <= :b"
)
_YEAR_BUCKET = sa.text(
    "SELECT key, clicks_counted FROM ranking_clicks_yearly WHERE tenant_id = :t AND group_by = :g "
    'AND year = :y AND bucket = :b AND clicks_counted <= :c AND (clicks_counted < :c OR key COLLATE "C" > :k) '
    'ORDER BY clicks_counted DESC, key COLLATE "C" LIMIT :n'
)
#: The rows at 0 in key order: a range of ``ix_ranking_clicks_yearly_order`` (migration 0016).
_YEAR_ZEROS = (
    "SELECT key FROM ranking_clicks_yearly WHERE tenant_id = :t AND group_by = :g AND year = :y "  # noqa: S608
    f"AND bucket = {domain.YEARLY_ZERO_BUCKET} "
)
_YEAR_ZEROS_FROM = sa.text(_YEAR_ZEROS + 'ORDER BY key COLLATE "C" LIMIT :n')
_YEAR_ZEROS_AFTER = sa.text(_YEAR_ZEROS + 'AND key COLLATE "C" > :k ORDER BY key COLLATE "C" LIMIT :n')
#: Above any bucket (a bigint's highest is 8 x 62 + 7).
_NO_BUCKET_ABOVE = 32767
_NO_CLICKS_ABOVE = 2**63 - 1


async def year_page(
    session: AsyncSession, tenant: str, group_by: str, year: int, after: tuple[int, str] | None, n: int
) -> list[tuple[str, int]]:
    """The first ``n`` (key, clicks) of a calendar year's groups, most counted clicks first, ties in
    code-point order, after ``after`` = (clicks, key): the rows of the cursor's bucket after it,
    then the next lower bucket's, and so on (each one index probe for the bucket and one range of
    it sorted, a few thousand rows at most), down to the rows at 0 (the groups present in the year
    without counted clicks), read in key order off the index, until ``n`` are found."""
    clicks, key = after if after is not None else (_NO_CLICKS_ABOVE, "")
    b: int | None = domain.yearly_bucket(clicks) if after is not None else _NO_BUCKET_ABOVE
    where = {"t": tenant, "g": group_by, "y": year}
    out: list[tuple[str, int]] = []
    while len(out) < n:
        b = await session.scalar(_YEAR_TOP_BUCKET, {**where, "b": b})
        if b is None:
            break
        if b == domain.YEARLY_ZERO_BUCKET:
            zeros = _YEAR_ZEROS_AFTER if after is not None and clicks == 0 else _YEAR_ZEROS_FROM
            res = await session.execute(zeros, {**where, "k": key, "n": n - len(out)})
            out += [(k, 0) for k in res.scalars().all()]
            break
        res = await session.execute(_YEAR_BUCKET, {**where, "b": b, "c": clicks, "k": key, "n": n - len(out)})
        out += [(k, int(c)) for k, c in res.all()]
        b -= 1
    return out


def years_clicks(tenant: str, group_by: str, years: tuple[int, ...]) -> sa.Select[Any]:
    """(key, clicks): each listed key's counted clicks over these calendar years."""
    y = RANKING_CLICKS_YEARLY
    cond = [y.c.tenant_id == tenant, y.c.group_by == group_by]
    if len(years) == 1:
        return sa.select(y.c.key, y.c.clicks_counted.label("clicks")).where(*cond, y.c.year == years[0])
    clicks = sa.cast(sa.func.sum(y.c.clicks_counted), sa.BigInteger).label("clicks")
    return sa.select(y.c.key, clicks).where(*cond, y.c.year.in_(years)).group_by(y.c.key)


def months_clicks(tenant: str, group_by: str, first: date, last: date) -> sa.Select[Any]:
    """(key, clicks): the monthly list's rows of the months from ``first`` to ``last`` (first days),
    one a key and month (an index range a month)."""
    m = RANKING_CLICKS_MONTHLY
    return sa.select(m.c.key, m.c.clicks_counted.label("clicks")).where(
        m.c.tenant_id == tenant, m.c.group_by == group_by, m.c.month.between(first, last)
    )


async def recompute_tenant_yearly(session: AsyncSession, tenant: str) -> None:
    """The tenant's yearly rows anew from the monthly roll-ups (the backfill; the caller holds the tenant)."""
    await _recompute(session, _FILL_YEARLY, tenant)


#: The yearly rows of ``:keys`` left at 0 whose group has no roll-up row left in the year (a
#: reversal pruned them): the list holds the groups present in a year, no other.
_PRUNE_YEARLY = (
    "DELETE FROM ranking_clicks_yearly r USING ({keys}) AS k(tenant_id, group_by, year, key) "
    "WHERE r.tenant_id = k.tenant_id AND r.group_by = k.group_by AND r.year = k.year AND r.key = k.key "
    "AND r.clicks_counted = 0 AND NOT CASE WHEN r.group_by = 'employee' THEN "
    "EXISTS (SELECT FROM employee_monthly_stats s WHERE s.tenant_id = r.tenant_id AND s.employee_id = r.key "
    "AND s.month BETWEEN make_date(r.year, 1, 1) AND make_date(r.year, 12, 1)) "
    "OR EXISTS (SELECT FROM daily_conversions c WHERE c.tenant_id = r.tenant_id AND c.employee_id = r.key "
    "AND c.day BETWEEN make_date(r.year, 1, 1) AND make_date(r.year, 12, 31)) "
    "ELSE EXISTS (SELECT FROM content_monthly_stats s WHERE s.tenant_id = r.tenant_id AND s.content_id = r.key "
    "AND s.month BETWEEN make_date(r.year, 1, 1) AND make_date(r.year, 12, 1)) "
    "OR EXISTS (SELECT FROM content_monthly_conversions c WHERE c.tenant_id = r.tenant_id "
    "AND c.content_id = r.key AND c.month BETWEEN make_date(r.year, 1, 1) AND make_date(r.year, 12, 1)) END"
)
_YEARLY_KEYS = ("tenant_id", "group_by", "year", "key")


def prune_yearly_statement(touched: Sequence[Sequence[Any]]) -> tuple[sa.TextClause, dict[str, Any]]:
    """The statement deleting the yearly rows of ``touched`` (tenant, group_by, year, key) that are
    at 0 and whose group left the year (after a reversal pruned its roll-up rows), and its parameters.
    Runs after the roll-ups' own prune (``aggregates.plan`` yields a list's rows after them)."""
    sql = _PRUNE_YEARLY.format(keys=unnest_select(RANKING_CLICKS_YEARLY, _YEARLY_KEYS))
    return sa.text(sql), {k: [r[i] for r in touched] for i, k in enumerate(_YEARLY_KEYS)}
