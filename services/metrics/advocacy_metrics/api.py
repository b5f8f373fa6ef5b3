from __future__ import annotations

from fastapi import APIRouter

from advocacy_common.auth import CurrentPrincipal
from advocacy_common.db import SessionDep
from advocacy_metrics import service
from advocacy_metrics.schemas import EmployeeMetrics

router = APIRouter(prefix="/v1/metrics", tags=["metrics"])


@router.get("/employees/{employee_id}", response_model=EmployeeMetrics)
async def employee_metrics(employee_id: str, who: CurrentPrincipal, session: SessionDep) -> EmployeeMetrics:
    return EmployeeMetrics.model_validate(await service.employee_metrics(session, who, employee_id))
