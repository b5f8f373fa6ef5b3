"""Moving the aggregate tables by :class:`~advocacy_metrics.domain.Deltas`, in the caller's transaction.

Rows are upserted (``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE SET c = c + excluded.c``):
one statement per table whatever the batch size, sorted by key so concurrent batches lock rows in
the same order. The sharer tables (first share, lapses) are recomputed per affected sharer from
``sharer_days``, so they do not depend on the order shares arrive in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import insert_rows, rows_param, rows_select, unnest_select
from advocacy_common.db import overlapped
from advocacy_metrics import domain
from advocacy_metrics.adapters import ranking
from advocacy_metrics.db import (
    ADOPTION_DAYS,
    CONVERSION_COLUMNS,
    CONVERSION_ROLLUPS,
    DIMENSION_DAILY_CLICKS,
    DIMENSION_DAILY_CONVERSIONS,
    FINE,
    RANKING_CLICKS_MONTHLY,
    RANKING_CLICKS_YEARLY,
    SHARER_DAYS,
    SHARER_LAPSES,
    SHARERS,
    STAT_COLUMNS,
    STAT_ROLLUPS,
    VERDICT_COLUMNS,
)

Statement = tuple[sa.TextClause, dict[str, Any]]


def upsert_add_statement(
    table: sa.Table,
    keys: Sequence[str],
    counters: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    only_moved: bool = False,
) -> Statement:
    """:func:`upsert_add`'s statement and parameters (``rows`` not empty). ``only_moved``: a row whose
    counters all add 0 is inserted when missing and left alone otherwise (no new row version)."""
    shape = (table.name, tuple(keys), tuple(counters), only_moved)
    statement = _UPSERTS.get(shape)
    if statement is None:  # one text per table and shape: built (and its binds parsed) once
        columns = [*keys, *counters]
        updates = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
        moved = " OR ".join(f"excluded.{c} <> 0" for c in counters)
        statement = _UPSERTS[shape] = sa.text(
            f"INSERT INTO {table.name} ({', '.join(columns)}) {rows_select(table, columns)} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}{f' WHERE {moved}' if only_moved else ''}"
        )
    return statement, rows_param(sorted(rows, key=itemgetter(*range(len(keys)))))


_UPSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], sa.TextClause] = {}


async def upsert_add(
    session: AsyncSession, table: sa.Table, keys: Sequence[str], counters: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Add ``counters`` into the rows at ``keys`` (inserting missing rows). ``rows`` are key + counter tuples."""
    if rows:
        await session.execute(*upsert_add_statement(table, keys, counters, rows))


async def insert_ignore(
    session: AsyncSession,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the rows that were new."""
    if not rows:
        return []
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) {rows_select(table, columns)} "
        f"ON CONFLICT DO NOTHING RETURNING {', '.join(returning)}"
    )
    res = await session.execute(sa.text(sql), rows_param(rows))
    return [tuple(r) for r in res.all()]


def insert_new_statements(table: sa.Table, columns: Sequence[str], key: str) -> tuple[sa.TextClause, sa.TextClause]:
    """:func:`advocacy_common.db.insert_new`'s two statements over the ``:rows`` parameter
    (:func:`~advocacy_common.bulk.rows_param`, rows of ``columns`` that do not repeat a ``key``): the
    plain insert, and the insert that skips the rows there already and answers their ``key``.

    The skipping one answers the rows that were there, where :func:`insert_ignore` answers the new
    ones: usually none come back (a redelivered batch), not one result row per new fact."""
    skipping = sa.text(
        f"WITH batch AS MATERIALIZED ({rows_select(table, columns)}), "  # noqa: S608 - our identifiers
        f"added AS (INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM batch "
        f"ON CONFLICT DO NOTHING RETURNING {key}) "
        f"SELECT {key} FROM batch EXCEPT SELECT {key} FROM added"
    )
    return insert_rows(table, columns), skipping


async def prune_zero_rows(
    session: AsyncSession,
    table: sa.Table,
    keys: Sequence[str],
    counters: Sequence[str],
    touched: Iterable[Sequence[Any]],
) -> None:
    """After a reversal, rows whose counters are all zero go (a rebuild would not have made them)."""
    touched = list(touched)
    if touched:
        await session.execute(*prune_zero_rows_statement(table, keys, counters, touched))


def prune_zero_rows_statement(
    table: sa.Table, keys: Sequence[str], counters: Sequence[str], touched: Sequence[Sequence[Any]]
) -> Statement:
    """:func:`prune_zero_rows`' statement and parameters (``touched`` not empty)."""
    zero = " AND ".join(f"t.{c} = 0" for c in counters)
    match = " AND ".join(f"t.{k} = k.{k}" for k in keys)
    sql = f"DELETE FROM {table.name} t USING ({unnest_select(table, keys)}) AS k({', '.join(keys)}) WHERE {match} AND {zero}"  # noqa: S608, E501
    return sa.text(sql), {k: [r[i] for r in touched] for i, k in enumerate(keys)}


_DIM_KEYS = ("tenant_id", "day", "dimension", "value")
_RANKING_KEYS = ("tenant_id", "group_by", "month", "key")
_YEARLY_RANKING_KEYS = ("tenant_id", "group_by", "year", "key")
_DIM_CONVERSION_KEYS = (*_DIM_KEYS, "kind", "currency")


def _stat_rows(items: Iterable[tuple[tuple[Any, ...], list[int]]]) -> list[list[Any]]:
    return [[*k, *v] for k, v in items]


def _sum_rows(items: Iterable[tuple[tuple[Any, ...], domain.Sum]]) -> list[list[Any]]:
    return [[*k, s.count, s.amount] for k, s in items]


Planned = tuple[sa.Table, Sequence[str], Sequence[str], list[list[Any]]]


def plan(d: domain.Deltas, ranking_lists: bool = True) -> Iterator[Planned]:
    """Every aggregate table with the rows ``d`` adds to it: (table, key columns, counters, rows).
    Lazily, one table at a time: :func:`apply` projects a table's rows while the previous table moves.

    A person's rows come first (the tables keyed by employee, then the ranking lists' employee rows),
    the rows every person's events share (teams, contents, networks, dimensions) last: a batch's two
    lanes (``ConsumerSpec.lanes``, split by person) lock nothing in common until then, and the second
    waits on the first's shared rows only from the first's last statements to its commit.
    ``ranking_lists=False``: not the ranking lists (a rebuild fills them once at the end)."""
    # each roll-up is summed from the smallest one made so far that holds its columns (a monthly
    # one from a daily one too): the same rows, from fewer
    made: dict[tuple[tuple[str, ...], bool], dict[Any, list[int]]] = {(FINE, False): d.stats}
    yield from _rollups(d, made, shared=False)
    # the ranking lists are projected here, while the person's last roll-up moves: not before the
    # batch's first statement goes out
    lists = _ranking_lists(d) if ranking_lists else ()
    yield from _list_rows(lists, shared=False)
    yield from _rollups(d, made, shared=True)
    yield from _list_rows(lists, shared=True)


def _rollups(
    d: domain.Deltas, made: dict[tuple[tuple[str, ...], bool], dict[Any, list[int]]], *, shared: bool
) -> Iterator[Planned]:
    """:func:`plan`'s roll-ups (and dimension tables) keyed by person, or those every person's events
    share (``shared``); the stats roll-ups it projects are added to ``made``."""
    for r in STAT_ROLLUPS:
        if ("employee_id" not in r.columns) is shared:
            stats = made.get((r.columns, r.monthly))
            if stats is None:
                holding = [k for k in made if (r.monthly or not k[1]) and set(r.columns) <= set(k[0])]
                source = min(holding, key=lambda k: len(made[k]))
                stats = made[(r.columns, r.monthly)] = domain.project_stats(
                    made[source], r.columns, r.monthly, source[0]
                )
            yield r.table, r.keys, STAT_COLUMNS, _stat_rows(stats.items())
    for r in CONVERSION_ROLLUPS:
        if ("employee_id" not in r.columns) is shared:
            conv = domain.project_conversions(d.conversions, r.columns, r.monthly)
            yield r.table, (*r.keys, "kind", "currency"), CONVERSION_COLUMNS, _sum_rows(conv.items())
    if shared:
        dim_conversions = _sum_rows(d.dim_conversions.items())
        yield DIMENSION_DAILY_CLICKS, _DIM_KEYS, VERDICT_COLUMNS, _stat_rows(d.dim_clicks.items())
        yield DIMENSION_DAILY_CONVERSIONS, _DIM_CONVERSION_KEYS, CONVERSION_COLUMNS, dim_conversions


_RankingList = tuple[sa.Table, Sequence[str], dict[Any, int]]


def _ranking_lists(d: domain.Deltas) -> tuple[_RankingList, ...]:
    """The ranking lists' counts ``d`` moves: the monthly list's, then the yearly one's."""
    ranking = domain.project_ranking(d.stats)
    yearly = domain.project_ranking_yearly(ranking, d.stats, d.conversions)
    return (RANKING_CLICKS_MONTHLY, _RANKING_KEYS, ranking), (RANKING_CLICKS_YEARLY, _YEARLY_RANKING_KEYS, yearly)


def _list_rows(lists: Iterable[_RankingList], *, shared: bool) -> Iterator[Planned]:
    """The ranking lists' rows of people (keys (tenant, group_by, period, key)), or of the groups
    they share (``shared``: teams, contents, networks)."""
    for table, keys, counts in lists:
        zeros = table is RANKING_CLICKS_YEARLY
        yield (
            table,
            keys,
            ("clicks_counted",),
            # the yearly list's rows at 0 too: a group present in a year without counted clicks
            [[*k, n] for k, n in counts.items() if (n or zeros) and (k[1] != "employee") is shared],
        )


def _statements(d: domain.Deltas, prune: bool, ranking_lists: bool) -> Iterator[Statement]:
    """:func:`apply`'s statements in order, each built when asked for (rows projected, sorted, encoded)."""
    for table, keys, counters, rows in plan(d, ranking_lists):
        if not rows:
            continue
        yearly = table is RANKING_CLICKS_YEARLY
        yield upsert_add_statement(table, keys, counters, rows, only_moved=yearly)
        n = len(keys)
        if yearly:  # its rows at 0 stay while the group is present in the year (ranking.prune_yearly_statement)
            if prune:
                yield ranking.prune_yearly_statement([r[:n] for r in rows])
        elif prune:
            yield prune_zero_rows_statement(table, keys, counters, [r[:n] for r in rows])
        elif table is RANKING_CLICKS_MONTHLY and (dropping := [r[:n] for r in rows if r[-1] < 0]):
            yield prune_zero_rows_statement(table, keys, counters, dropping)  # a monthly row is never left at 0


class NewSharerDays(NamedTuple):
    """What :func:`apply` added to ``sharer_days``, and every share day of those sharers (read by the
    sharer refresh; empty with ``refresh=False``)."""

    new: list[tuple[str, str, date]]
    days: dict[tuple[str, str], list[date]]


async def apply(
    session: AsyncSession, d: domain.Deltas, *, prune: bool = False, refresh: bool = True, ranking_lists: bool = True
) -> NewSharerDays:
    """Move every aggregate by ``d``. ``prune`` (reversals) removes rows left all-zero; ``refresh=False``
    leaves the sharer summaries to the caller (a rebuild recomputes them once at the end), and
    ``ranking_lists=False`` the ranking lists (a rebuild fills them from the roll-ups at the end)."""
    if not d:
        return NewSharerDays([], {})
    # the next statement is built (a roll-up's rows projected, sorted, encoded: Python) while the
    # database runs the one before: the batch's turns at the CPU and at the database overlap
    statements = _statements(d, prune, ranking_lists)
    statement = next(statements, None)
    while statement is not None:
        statement = await overlapped(session.execute(*statement), lambda: next(statements, None))
    if d.sharer_days:
        new = await insert_ignore(
            session,
            SHARER_DAYS,
            ("tenant_id", "employee_id", "day"),
            sorted(d.sharer_days),
            ("tenant_id", "employee_id", "day"),
        )
        added = [(t, e, day) for t, e, day in new]
        if refresh:
            return NewSharerDays(added, await refresh_sharers(session, {(t, e) for t, e, _ in added}))
        return NewSharerDays(added, {})
    return NewSharerDays([], {})


async def refresh_sharers(session: AsyncSession, who: set[tuple[str, str]]) -> dict[tuple[str, str], list[date]]:
    """Recompute first share day and lapse days of these sharers from their share days (returned)."""
    if not who:
        return {}
    pairs = sorted(who)
    keys = ("tenant_id", "employee_id")
    params = {"tenant_id": [t for t, _ in pairs], "employee_id": [e for _, e in pairs]}
    match = f"({unnest_select(SHARER_DAYS, keys)}) AS k(tenant_id, employee_id)"
    res = await session.execute(
        sa.text(
            f"SELECT s.tenant_id, s.employee_id, s.day FROM sharer_days s JOIN {match} "  # noqa: S608
            "ON s.tenant_id = k.tenant_id AND s.employee_id = k.employee_id"
        ),
        params,
    )
    days: defaultdict[tuple[str, str], list[date]] = defaultdict(list)
    for t, e, day in res.all():
        days[(t, e)].append(day)
    counts = AdoptionCounts()
    for table, column, sign in ((SHARERS, "first_day", -1), (SHARER_LAPSES, "day", -1)):
        res = await session.execute(
            sa.text(
                f"DELETE FROM {table.name} s USING {match} "  # noqa: S608
                f"WHERE s.tenant_id = k.tenant_id AND s.employee_id = k.employee_id RETURNING s.tenant_id, s.{column}"
            ),
            params,
        )
        counts.add(res.all(), "new" if table is SHARERS else "lapsed", sign)
    firsts = [(t, e, min(ds)) for (t, e), ds in sorted(days.items())]
    lapses = [(t, e, lapse) for (t, e), ds in sorted(days.items()) for lapse in domain.lapse_days(ds)]
    await insert_ignore(session, SHARERS, ("tenant_id", "employee_id", "first_day"), firsts, ("tenant_id",))
    await insert_ignore(session, SHARER_LAPSES, ("tenant_id", "employee_id", "day"), lapses, ("tenant_id",))
    counts.add([(t, d) for t, _, d in firsts], "new", 1)
    counts.add([(t, d) for t, _, d in lapses], "lapsed", 1)
    await counts.apply(session)
    return days


class AdoptionCounts:
    """Net changes to ``adoption_days`` (new sharers and lapses per day), applied in one upsert."""

    def __init__(self) -> None:
        self.rows: defaultdict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, tenant_days: Iterable[Sequence[Any]], what: str, sign: int) -> None:
        slot = 0 if what == "new" else 1
        for tenant, day in tenant_days:
            self.rows[(tenant, day)][slot] += sign

    async def apply(self, session: AsyncSession, prune: bool = True) -> None:
        rows = [[t, d, n, lp] for (t, d), (n, lp) in self.rows.items() if n or lp]
        keys, counters = ("tenant_id", "day"), ("new_sharers", "lapsed_sharers")
        await upsert_add(session, ADOPTION_DAYS, keys, counters, rows)
        if prune:
            await prune_zero_rows(session, ADOPTION_DAYS, keys, counters, (r[:2] for r in rows))
