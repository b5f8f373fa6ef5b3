"""Members: followed topics, membership, erasure (routes of features/members.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_content.features import members
from advocacy_content.schemas import MembershipIn, MembershipPublic, TopicsIn, TopicsPublic

router = APIRouter(prefix="/v1", tags=["programme"])


@router.get("/me/topics", operation_id="getMyTopics", response_model=TopicsPublic)
async def get_topics(who: EmployeePrincipal, session: SessionDep) -> TopicsPublic:
    return await members.get_topics(session, who)


@router.put("/me/topics", operation_id="replaceMyTopics", response_model=TopicsPublic)
async def put_topics(body: TopicsIn, who: EmployeePrincipal, session: SessionDep) -> TopicsPublic:
    return await members.put_topics(session, who, body)


@router.get("/me/membership", operation_id="getMyMembership", response_model=MembershipPublic)
async def get_membership(who: EmployeePrincipal, session: SessionDep) -> MembershipPublic:
    return await members.get_membership(session, who)


@router.put("/me/membership", operation_id="replaceMyMembership", response_model=MembershipPublic)
async def put_membership(body: MembershipIn, who: EmployeePrincipal, session: SessionDep) -> MembershipPublic:
    return await members.put_membership(session, who, body)


@router.delete("/members/{employee_id}", status_code=status.HTTP_204_NO_CONTENT)
async def erase_member(employee_id: str, who: AdminPrincipal, session: SessionDep) -> Response:
    """Erase a person: content forgets them and every other service is told to (member.erased)."""
    await members.erase_member(session, who, employee_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
