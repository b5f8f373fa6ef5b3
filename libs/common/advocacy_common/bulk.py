"""Many rows in one fixed-text statement: the one way every service writes and matches batches.

A consumed batch touches hundreds or thousands of rows. ``stmt.values(rows)`` compiles a bind
parameter for every cell of every row, and ``session.execute(stmt, rows)`` ("insertmanyvalues")
still builds a multi-row VALUES list per batch: both dominated the consumers' profiles. The
statements here have one text whatever the batch size (asyncpg prepares it once per connection,
SQLAlchemy compiles nothing per batch), in two forms:

- **rows as one JSON array** (:func:`rows_select`, :func:`insert_rows`, :func:`rows_param`): the
  batch travels as one JSON text (orjson, in C) that PostgreSQL parses once; the form for wide rows
  and large batches. One array parameter per column would cost asyncpg two ``isinstance`` checks
  against the collections ABCs per element (same database cost, twice the Python time).
- **one array per column** (:func:`unnest_select`, :func:`unnest_insert`): for a few short key
  lists, and where a value is bytes (JSON has no bytes).

Every cast uses the column's own PostgreSQL type, compiled from the table definition, so a value is
converted exactly as the column would store it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_PREPARER = _DIALECT.identifier_preparer


def pg_type(column: sa.Column[Any]) -> str:
    """The column's PostgreSQL type as DDL would spell it (``INTEGER``, ``NUMERIC(20, 4)``, ...)."""
    return str(column.type.compile(dialect=_DIALECT))


def quote(name: str) -> str:
    return str(_PREPARER.quote(name))


def column_list(columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)


# -- rows as one JSON array -------------------------------------------------------------------------
def rows_select(table: sa.Table, columns: Sequence[str]) -> str:
    """``SELECT CAST(r->>0 AS t0) AS c0, ... FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r``:
    the ``:rows`` parameter (:func:`rows_param`) as rows of ``table``'s ``columns``."""
    casts = ", ".join(f"CAST(r->>{i} AS {pg_type(table.c[c])}) AS {quote(c)}" for i, c in enumerate(columns))
    return f"SELECT {casts} FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r"  # noqa: S608 - our identifiers


def insert_rows(table: sa.Table, columns: Sequence[str], tail: str = "") -> sa.TextClause:
    """``INSERT INTO table AS t (columns) SELECT ... <tail>`` over ``:rows`` (the target is ``t``)."""
    return sa.text(
        f"INSERT INTO {quote(table.name)} AS t ({column_list(columns)}) {rows_select(table, columns)} {tail}"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as a row value")


def rows_param(rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """Row tuples (in the statement's column order) -> the ``:rows`` parameter."""
    return {"rows": orjson.dumps(rows, default=_json_default).decode()}


# -- one array per column ---------------------------------------------------------------------------
def unnest_select(table: sa.Table, columns: Sequence[str], *, ordered: bool = False) -> str:
    """``SELECT columns FROM unnest(CAST(:c1 AS t1[]), ...)``: one array parameter per column, named
    like the column. ``ordered``: the rows come out in the arrays' order (``WITH ORDINALITY``)."""
    arrays = ", ".join(f"CAST(:{c} AS {pg_type(table.c[c])}[])" for c in columns)
    names = column_list(columns)
    if ordered:
        return f"SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS u({names}, _n) ORDER BY _n"  # noqa: S608
    return f"SELECT {names} FROM unnest({arrays}) AS u({names})"  # noqa: S608 - our identifiers


def unnest_insert(table: sa.Table, columns: Sequence[str], tail: str = "", *, ordered: bool = False) -> sa.TextClause:
    """``INSERT INTO table (columns) SELECT ... FROM unnest(...) <tail>`` (see :func:`unnest_select`)."""
    return sa.text(
        f"INSERT INTO {quote(table.name)} ({column_list(columns)}) "
        f"{unnest_select(table, columns, ordered=ordered)} {tail}"
    )
