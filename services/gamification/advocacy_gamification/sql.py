"""Statement helpers for the batch paths (a consumed batch touches hundreds of people at once).

- :func:`people_in`: "(tenant, employee) is one of these", as ``tenant = $1 AND employee = ANY($2)``
  per tenant: one array parameter, an index range per tenant. A row-value ``IN`` over thousands of
  tuples is planned badly (it took seconds per batch in the profile).
- Multi-row writes on the consumer path are fixed-text statements over one array per column
  (:func:`insert_unnest`, :func:`arrays`). ``stmt.values(rows)`` compiles a fresh bind parameter
  for every cell of every row, and ``session.execute(stmt, rows)`` ("insertmanyvalues") still builds
  and binds a multi-row VALUES list per batch: both dominated the consumer's profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

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


# -- fixed-text statements over arrays ---------------------------------------------------------------
# ``INSERT ... SELECT * FROM unnest(CAST(:a AS text[]), ...)`` has one text whatever the batch size:
# asyncpg prepares it once per connection and SQLAlchemy compiles nothing per batch (a multi-row
# VALUES list is a new statement, compiled and planned anew, for every batch size).
_PG_TYPES: tuple[tuple[type[Any], str], ...] = (
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.Boolean, "bool"),
    (sa.Date, "date"),
    (sa.DateTime, "timestamptz"),
    (sa.LargeBinary, "bytea"),
    (sa.String, "text"),
)


def pg_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):  # SQLModel's AutoString
        kind = kind.impl_instance
    for py, name in _PG_TYPES:
        if isinstance(kind, py):
            return name
    raise TypeError(f"no PostgreSQL array type for {column.table.name}.{column.name} ({column.type!r})")


_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


def quote(name: str) -> str:
    return _PREPARER.quote(name)


def column_list(columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)


def unnest(table: sa.Table, columns: Sequence[str]) -> str:
    """``unnest(CAST(:c1 AS t1[]), ...)`` over ``table``'s columns: one array parameter per column,
    named after the column (see :func:`arrays`)."""
    return "unnest(" + ", ".join(f"CAST(:{c} AS {pg_type(table.c[c])}[])" for c in columns) + ")"


def insert_unnest(table: sa.Table, columns: Sequence[str], tail: str = "") -> sa.TextClause:
    """``INSERT INTO table AS t (columns) SELECT * FROM unnest(...) <tail>`` (the target is ``t``)."""
    return sa.text(
        f"INSERT INTO {quote(table.name)} AS t ({column_list(columns)}) "  # noqa: S608 - our identifiers
        f"SELECT * FROM {unnest(table, columns)} {tail}"
    )


def arrays(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """Row tuples (in ``columns`` order) -> one list per column, the parameters of :func:`unnest`."""
    if not rows:
        return {c: [] for c in columns}
    return {c: list(values) for c, values in zip(columns, zip(*rows, strict=True), strict=True)}
