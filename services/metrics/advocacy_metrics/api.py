from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics.adapters import ranges
from advocacy_metrics.features import export, reports
from advocacy_metrics.schemas import (
    AdoptionReport,
    ContentMetrics,
    EmployeeMetrics,
    GroupBy,
    RoiReport,
    Summary,
    SummaryOrder,
)

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])

From = Annotated[
    str | None,
    Query(
        alias="from",
        description="First day, inclusive: YYYY-MM-DD in the tenant's time zone, or an RFC 3339 time.",
    ),
]
To = Annotated[str | None, Query(description="Last day, inclusive (default: today in the tenant's time zone).")]


@router.get("/employees/{employee_id}", operation_id="getEmployeeMetrics", response_model=EmployeeMetrics)
async def employee_metrics(
    employee_id: str, who: EmployeePrincipal, session: SessionDep, from_: From = None, to: To = None
) -> EmployeeMetrics:
    """One employee's totals (all time unless a range is given); ``me`` for the caller."""
    return EmployeeMetrics.model_validate(await reports.employee_metrics(session, who, employee_id, from_, to))


@router.get("/content/{content_id}", operation_id="getContentMetrics", response_model=ContentMetrics)
async def content_metrics(
    content_id: str, who: EmployeePrincipal, session: SessionDep, from_: From = None, to: To = None
) -> ContentMetrics:
    """One content item's totals across everyone who shared it, and per network."""
    return ContentMetrics.model_validate(await reports.content_metrics(session, who, content_id, from_, to))


@router.get("/summary", operation_id="getMetricsSummary", response_model=Summary)
async def summary(
    admin: AdminPrincipal,
    session: SessionDep,
    from_: From = None,
    to: To = None,
    group_by: GroupBy = GroupBy.day,
    limit: Annotated[
        int, Query(ge=1, le=reports.SUMMARY_MAX_LIMIT, description="Groups per page (a year by day fits one).")
    ] = reports.SUMMARY_DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")] = None,
    order: Annotated[
        SummaryOrder,
        Query(
            description="`key`: groups in key order. `clicks`: by counted clicks, most first, ties in key "
            "order; with `limit` the top N (`limit=10`: the top 10) at the cost of one ranking pass, "
            "and `next_cursor` pages on in that order."
        ),
    ] = SummaryOrder.key,
) -> Response:
    """Every measure per group, a page of groups in key order (or by counted clicks), and the
    totals of the whole range. Serialised straight to JSON (a page can hold thousands of groups);
    the shape is ``Summary``, pinned by the tests. The CSV export streams every group without pages."""
    body = await reports.summary(session, admin, group_by.value, from_, to, limit, cursor, order.value)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/adoption", operation_id="getAdoption", response_model=AdoptionReport)
async def adoption(admin: AdminPrincipal, session: SessionDep, from_: From = None, to: To = None) -> AdoptionReport:
    """How much of the eligible workforce shares: ``eligible`` is the people provisioned and active in
    the company directory (SCIM) at the end of the range when the tenant has one, the enrolled
    otherwise; the 30-day activity, this week and this month are shares of it. Weeks start on the
    tenant's ``week_starts_on``."""
    return AdoptionReport.model_validate(await reports.adoption_metrics(session, admin, from_, to))


@router.get("/roi", operation_id="getRoi", response_model=RoiReport)
async def roi(admin: AdminPrincipal, session: SessionDep, from_: From = None, to: To = None) -> RoiReport:
    return RoiReport.model_validate(await reports.roi(session, admin, from_, to))


@router.get("/export.csv", operation_id="exportMetricsCsv", response_class=StreamingResponse)
async def export_csv(
    request: Request,
    admin: AdminPrincipal,
    session: SessionDep,
    from_: From = None,
    to: To = None,
    group_by: GroupBy = GroupBy.day,
) -> StreamingResponse:
    """The summary as CSV (same filters), streamed as the groups are read."""
    settings = await load_tenant_settings(session, admin.tenant_id)
    days = ranges.resolve(from_, to, settings.zone, reports.today_in(settings))
    body = export.stream_csv(request.app.state.runtime.sessionmaker, admin.tenant_id, group_by.value, days, settings)
    name = f"metrics-{group_by.value}-{days.start}-{days.end}.csv"
    return StreamingResponse(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
