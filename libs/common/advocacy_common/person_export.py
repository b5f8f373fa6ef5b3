"""The per-person data export (issue 13, item 9: the right of access, beside erasure).

Services do not read each other's tables, so each one answers
``GET /v1/data-export/<service>/{employee_id}`` with its own part (a path per service, like the audit
log's, so the edge routes each to its owner): every row it holds about the person, section by section
(one section per table and role the person has in it: their shares, the content they proposed...). A
front end, or the devtools command ``advocacy export-person``, calls the four services and puts the
parts side by side
in one JSON document.

Who may ask: an admin of the tenant, or the person themselves (``employee_id`` is the caller's
``sub``); anyone else is refused (403). Bounded: each section holds at most :data:`SECTION_LIMIT`
rows, newest first where the table has a time, and says ``truncated`` when there were more (the
person asks again after the admin exported or purged, or an operator exports in full with SQL).
Columns holding other people's data (a visitor's hash or browser on a click) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.auth import Principal
from advocacy_common.auth.deps import EmployeePrincipal
from advocacy_common.db import SessionDep, one_snapshot
from advocacy_common.errors import Forbidden

#: Rows per section at most: a few years of one person's activity; the answer stays a few MB.
SECTION_LIMIT = 1000
#: Employee ids are short; anything longer is refused before a query runs.
MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Section:
    """Rows of ``table`` whose ``person`` column is the person (and ``tenant_id`` the caller's)."""

    name: str
    table: sa.Table
    person: str = "employee_id"
    omit: tuple[str, ...] = ()  # columns about other people, or secrets
    newest_first: str | None = None  # a time column to order by; else the primary key
    # rows reached through another table (a person's groups through their directory row): the
    # query of (tenant id, employee id), ordered; the exporter bounds it. ``table`` is then the
    # table whose rows it names, ``person`` and ``newest_first`` unused.
    query: Callable[[str, str], sa.Select[Any]] | None = None


class ExportSection(BaseModel):
    items: list[dict[str, Any]]
    truncated: bool = Field(description=f"more than {SECTION_LIMIT} rows: the newest {SECTION_LIMIT} are here")


class PersonExport(BaseModel):
    """One service's part of a person's data export."""

    service: str
    tenant_id: str
    employee_id: str
    generated_at: datetime
    section_limit: int = SECTION_LIMIT
    sections: dict[str, ExportSection]


def check_access(who: Principal, employee_id: str) -> None:
    """An admin, or the person themselves."""
    if not who.is_admin and who.sub != employee_id:
        raise Forbidden("only an admin or the person themselves may export a person's data")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return None  # never raw blobs
    return value


async def export_person(
    session: AsyncSession, service: str, sections: Sequence[Section], tenant_id: str, employee_id: str
) -> PersonExport:
    """Every section from one snapshot: a balance or a total agrees with the entries exported beside
    it even while a consumer batch commits between the sections' reads."""
    await one_snapshot(session)
    out: dict[str, ExportSection] = {}
    for s in sections:
        if s.query is not None:
            stmt = s.query(tenant_id, employee_id)
            names = [c.name for c in stmt.selected_columns]
            found = (await session.execute(stmt.limit(SECTION_LIMIT + 1))).all()
            items = [{n: _plain(v) for n, v in zip(names, r, strict=True)} for r in found[:SECTION_LIMIT]]
            out[s.name] = ExportSection(items=items, truncated=len(found) > SECTION_LIMIT)
            continue
        t = s.table
        cols = [c for c in t.columns if c.name not in s.omit and not isinstance(c.type, sa.LargeBinary)]
        order = [t.c[s.newest_first].desc()] if s.newest_first else [c.desc() for c in t.primary_key.columns]
        rows = (
            await session.execute(
                sa.select(*cols)
                .where(t.c.tenant_id == tenant_id, t.c[s.person] == employee_id)
                .order_by(*order)
                .limit(SECTION_LIMIT + 1)
            )
        ).all()
        items = [{c.name: _plain(v) for c, v in zip(cols, r, strict=True)} for r in rows[:SECTION_LIMIT]]
        out[s.name] = ExportSection(items=items, truncated=len(rows) > SECTION_LIMIT)
    return PersonExport(
        service=service,
        tenant_id=tenant_id,
        employee_id=employee_id,
        generated_at=datetime.now(UTC),
        sections=out,
    )


def export_router(service: str, sections: Sequence[Section]) -> APIRouter:
    """The service's ``GET /v1/data-export/<service>/{employee_id}`` route over ``sections``."""
    router = APIRouter(prefix="/v1", tags=["data export"])

    @router.get(
        f"/data-export/{service}/{{employee_id}}",
        response_model=PersonExport,
        operation_id=f"export{service.capitalize()}PersonData",
    )
    async def export_person_data(
        employee_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
        who: EmployeePrincipal,
        session: SessionDep,
    ) -> PersonExport:
        """Everything this service holds about one person (an admin, or the person): their part of
        the data export; the other services answer theirs at ``/v1/data-export/<service>/...``."""
        check_access(who, employee_id)
        return await export_person(session, service, sections, who.tenant_id, employee_id)

    return router
