"""The advisory locks that order fact writers and rebuilds: shared per tenant (a rebuild takes it
exclusively), exclusive per employee, always taken in sorted order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


def _lock_key_sql(prefix: str, shared: bool, param: str = "keys") -> str:
    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    return f"SELECT {fn}(hashtextextended('{prefix}:' || k, 0)) FROM (SELECT k FROM jsonb_array_elements_text(CAST(:{param} AS jsonb)) k ORDER BY k) s"  # noqa: S608, E501


def json_param(values: Sequence[Any]) -> str:
    """A list (of strings, or of row lists) as one JSON text: PostgreSQL parses it once, where a
    ``text[]`` parameter made asyncpg check every element against the collections ABCs."""
    return orjson.dumps(values).decode()


_LOCK_TENANTS = sa.text(_lock_key_sql("metrics-tenant", False))
# One round trip for a batch's locks: the tenants' (shared) then the people's, each in sorted order
# (an Append runs its branches one after the other), answered with one row, not one per key.
_LOCK_TENANTS_THEN_PEOPLE = sa.text(
    f"SELECT count(*) FROM ({_lock_key_sql('metrics-tenant', True, 'tenants')} "  # noqa: S608
    f"UNION ALL {_lock_key_sql('metrics-employee', False, 'people')}) l"
)


async def lock(session: AsyncSession, tenants: Sequence[str], people: Sequence[tuple[str, str]]) -> None:
    """Shared lock per tenant (a rebuild takes it exclusively), exclusive per employee, sorted."""
    if tenants or people:
        keys = sorted({f"{t}\x1f{e}" for t, e in people})
        await session.execute(
            _LOCK_TENANTS_THEN_PEOPLE, {"tenants": json_param(sorted(set(tenants))), "people": json_param(keys)}
        )


async def lock_tenant_exclusive(session: AsyncSession, tenant: str) -> None:
    await session.execute(_LOCK_TENANTS, {"keys": json_param([tenant])})
