"""Statement helpers for the batch paths (a consumed batch touches hundreds of people at once).

- :func:`people_in`: "(tenant, employee) is one of these", as ``tenant = $1 AND employee = ANY($2)``
  per tenant: one array parameter, an index range per tenant. A row-value ``IN`` over thousands of
  tuples is planned badly (it took seconds per batch in the profile).
- Multi-row writes on the consumer path are fixed-text statements over a JSON array of rows
  (:func:`insert_rows`, :func:`rows_param`). ``stmt.values(rows)`` compiles a fresh bind parameter
  for every cell of every row, and ``session.execute(stmt, rows)`` ("insertmanyvalues") still builds
  and binds a multi-row VALUES list per batch: both dominated the consumer's profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY


def people_in(tenant_col: Any, id_col: Any, keys: Iterable[tuple[str, str]]) -> sa.ColumnElement[bool]:
    by_tenant: dict[str, set[str]] = defaultdict(set)
    for t, e in keys:
        by_tenant[t].add(e)
    if not by_tenant:
        return sa.false()
    return sa.or_(
        *(
            sa.and_(tenant_col == t, id_col == sa.any_(sa.literal(sorted(ids), ARRAY(sa.Text))))
            for t, ids in sorted(by_tenant.items())
        )
    )


# -- fixed-text statements over a JSON array of rows ---------------------------------------------
# ``INSERT ... SELECT CAST(r->>0 AS text), ... FROM jsonb_array_elements(CAST(:rows AS jsonb)) r``
# has one text whatever the batch size: asyncpg prepares it once per connection and SQLAlchemy
# compiles nothing per batch (a multi-row VALUES list is a new statement, compiled and planned
# anew, for every batch size). The rows travel as one JSON text (orjson, in C) that PostgreSQL
# parses once; one array parameter per column would cost asyncpg two ``isinstance`` checks
# against the collections ABCs per element, which showed in the profile (same cost in the
# database, twice the Python time).
_PG_TYPES: tuple[tuple[type[Any], str], ...] = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Boolean, "bool"),
    (sa.Date, "date"),
    (sa.DateTime, "timestamptz"),
    (sa.String, "text"),
)


def pg_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):  # SQLModel's AutoString
        kind = kind.impl_instance
    for py, name in _PG_TYPES:
        if isinstance(kind, py):
            return name
    raise TypeError(f"no PostgreSQL type for {column.table.name}.{column.name} ({column.type!r})")


_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


def quote(name: str) -> str:
    return _PREPARER.quote(name)


def column_list(columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)


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


def rows_param(rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """Row tuples (in the statement's column order) -> the ``:rows`` parameter."""
    return {"rows": orjson.dumps(rows).decode()}
