"""The tenant policy (guidelines), its versions, and the message check."""

from __future__ import annotations

from fastapi import APIRouter

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.openapi import answers
from advocacy_common.pagination import Page, PageDep
from advocacy_content.features import policy
from advocacy_content.schemas import PolicyCheckIn, PolicyCheckOut, PolicyIn, PolicyPublic, PolicyVersionPublic

router = APIRouter(prefix="/v1/policy", tags=["policy"])


@router.get("", response_model=PolicyPublic)
async def get_policy(who: EmployeePrincipal, session: SessionDep) -> PolicyPublic:
    """The policy in force (version 0: none yet). Only admins see the blocked terms themselves."""
    _, row = await policy.current_policy(session, who.tenant_id)
    return policy.to_public(row, admin=who.is_admin)


@router.put("", operation_id="replacePolicy", responses=answers(429), response_model=PolicyPublic)
async def put_policy(body: PolicyIn, who: AdminPrincipal, session: SessionDep) -> PolicyPublic:
    """Replace the policy: a new version when anything changed (published to sharing)."""
    row, _ = await policy.put_policy(session, who, body)
    return policy.to_public(row, admin=True)


@router.get("/versions", operation_id="listPolicyVersions", response_model=Page[PolicyVersionPublic])
async def list_versions(who: AdminPrincipal, session: SessionDep, page: PageDep) -> Page[PolicyVersionPublic]:
    """Every version, newest first: who changed what, when."""
    rows, cursor = await policy.list_versions(session, who, page)
    return Page(items=[policy.version_public(r) for r in rows], next_cursor=cursor)


@router.post("/check", operation_id="checkPolicy", responses=answers(429), response_model=PolicyCheckOut)
async def check(body: PolicyCheckIn, who: EmployeePrincipal, session: SessionDep) -> PolicyCheckOut:
    """Every rule the text breaks on that network, each with its span in the text."""
    return await policy.check(session, who, body)
