"""Coaching threads: private to the requester, the tenant's coaches and admins (others: 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from advocacy_common.auth import EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.openapi import answers
from advocacy_common.pagination import Page, PageDep
from advocacy_content.features import coaching
from advocacy_content.schemas import CoachingCreate, CoachingPublic, ReplyIn

router = APIRouter(prefix="/v1/coaching/requests", tags=["coaching"])


@router.post(
    "",
    operation_id="createCoachingRequest",
    responses=answers(429),
    status_code=status.HTTP_201_CREATED,
    response_model=CoachingPublic,
)
async def create_request(body: CoachingCreate, who: EmployeePrincipal, session: SessionDep) -> CoachingPublic:
    return await coaching.create_request(session, who, body)


@router.get("", operation_id="listCoachingRequests", response_model=Page[CoachingPublic])
async def list_requests(
    who: EmployeePrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(pattern="^(open|closed|all)$")] = None,
) -> Page[CoachingPublic]:
    """The requester: their own threads. Coaches and admins: the tenant's open threads."""
    items, cursor = await coaching.list_requests(session, who, page, status=status)
    return Page(items=items, next_cursor=cursor)


@router.get("/{request_id}", operation_id="getCoachingRequest", response_model=CoachingPublic)
async def get_request(request_id: str, who: EmployeePrincipal, session: SessionDep) -> CoachingPublic:
    return await coaching.get_request(session, who, request_id)


@router.post(
    "/{request_id}/replies",
    responses=answers(409, 429),
    operation_id="replyToCoachingRequest",
    status_code=status.HTTP_201_CREATED,
    response_model=CoachingPublic,
)
async def reply(request_id: str, body: ReplyIn, who: EmployeePrincipal, session: SessionDep) -> CoachingPublic:
    return await coaching.reply(session, who, request_id, body)


@router.post("/{request_id}/close", operation_id="closeCoachingRequest", response_model=CoachingPublic)
async def close(request_id: str, who: EmployeePrincipal, session: SessionDep) -> CoachingPublic:
    return await coaching.close(session, who, request_id)
