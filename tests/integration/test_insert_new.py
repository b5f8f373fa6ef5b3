"""``advocacy_common.db.insert_new``: a batch's rows by a plain insert, the skipping statement only
after a unique violation, any other error raised as it is, and the Python beside it run once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from advocacy_common.db import insert_new, make_engine, make_sessionmaker

_SCHEMA = "CREATE TABLE facts (id int PRIMARY KEY, n int NOT NULL CHECK (n >= 0))"
_ROWS = "SELECT (r->>0)::int, (r->>1)::int FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r"
# each statement says which one ran: the plain one answers every row, the skipping one the new ones
_PLAIN = sa.text(f"INSERT INTO facts (id, n) {_ROWS} RETURNING 'plain', id")
_SKIPPING = sa.text(f"INSERT INTO facts (id, n) {_ROWS} ON CONFLICT DO NOTHING RETURNING 'skipping', id")


async def _insert(url: str, rows: str) -> tuple[list[tuple[str, int]], int, list[int]]:
    """(the rows answered, the times ``meanwhile`` ran, the table's ids after the commit)."""
    engine = make_engine(url, pool_size=1)
    calls: list[int] = []
    try:
        async with make_sessionmaker(engine)() as session:
            async with session.begin():
                answered, out = await insert_new(session, _PLAIN, _SKIPPING, {"rows": rows}, lambda: calls.append(1))
                assert out is None
            ids = list((await session.execute(sa.text("SELECT id FROM facts ORDER BY id"))).scalars())
        return sorted((str(r[0]), int(r[1])) for r in answered), len(calls), ids
    finally:
        await engine.dispose()


async def _setup(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(_SCHEMA))
    finally:
        await engine.dispose()


def test_new_rows_go_in_plainly_and_present_ones_are_skipped(new_database: str) -> None:
    asyncio.run(_setup(new_database))
    # all new: the plain insert, once
    assert asyncio.run(_insert(new_database, "[[1, 5], [2, 5]]")) == ([("plain", 1), ("plain", 2)], 1, [1, 2])
    # one there already: the plain insert's rows are rolled back with its savepoint, the skipping
    # statement inserts the new one, the transaction commits; the Python beside it ran once
    assert asyncio.run(_insert(new_database, "[[2, 5], [3, 5]]")) == ([("skipping", 3)], 1, [1, 2, 3])


def test_another_violation_is_raised_not_skipped(new_database: str) -> None:
    asyncio.run(_setup(new_database))
    with pytest.raises(sa.exc.IntegrityError) as raised:
        asyncio.run(_insert(new_database, "[[1, -1]]"))
    assert "'plain'" in str(raised.value)  # the plain statement's check violation, the skipping one not tried


async def _order(url: str) -> list[str]:
    engine = make_engine(url, pool_size=1)
    seen: list[str] = []

    @sa.event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _sent(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await insert_new(session, _PLAIN, _SKIPPING, {"rows": "[[1, 5]]"}, lambda: seen.append("meanwhile"))
    finally:
        await engine.dispose()
    return seen


def test_the_plain_insert_is_sent_before_meanwhile_runs(new_database: str) -> None:
    """The overlap: the savepoint's round trip first, then ``plain`` goes out, then the Python runs
    (the ORM emits SAVEPOINT on first use: were it left to ``plain``, ``plain`` would wait for it)."""
    asyncio.run(_setup(new_database))
    assert asyncio.run(_order(new_database)) == ["SAVEPOINT", "INSERT", "meanwhile", "RELEASE"]
