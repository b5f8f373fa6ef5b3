"""Statement helpers for the batch paths (a consumed batch touches hundreds of people at once).

- :func:`people_in`: "(tenant, employee) is one of these", as ``tenant = $1 AND employee = ANY($2)``
  per tenant: one array parameter, an index range per tenant. A row-value ``IN`` over thousands of
  tuples is planned badly (it took seconds per batch in the profile).
- :func:`person_totals`: a person's ``points_totals`` rows, one primary-key probe per board.
- Multi-row writes on the consumer path are the library's fixed-text statements
  (:mod:`advocacy_common.bulk`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from advocacy_gamification.db import BOARDS, MEMBERS, TOTALS


def ranked_member() -> sa.ColumnElement[bool]:
    """:func:`advocacy_gamification.domain.is_ranked` over an outer-joined ``members`` row (no row:
    ranked)."""
    return sa.func.coalesce(sa.and_(MEMBERS.c.enrolled, MEMBERS.c.visibility != "hidden", MEMBERS.c.active), sa.true())


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


def person_totals(tenant_id: str, employee_id: str) -> sa.ColumnElement[bool]:
    """The person's ``points_totals`` rows: the tenant's boards (``boards``), each probed on the
    primary key (tenant, window, first day, employee): no index on (tenant, employee) needed."""
    boards = sa.select(BOARDS.c.window, BOARDS.c.window_start).where(BOARDS.c.tenant_id == tenant_id)
    return sa.and_(
        TOTALS.c.tenant_id == tenant_id,
        sa.tuple_(TOTALS.c.window, TOTALS.c.window_start).in_(boards),
        TOTALS.c.employee_id == employee_id,
    )
