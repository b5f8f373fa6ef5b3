"""The programme: followed topics, membership, roll-out waves, erasure."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import Page, PageDep
from advocacy_content import members, waves
from advocacy_content.schemas import (
    MembershipIn,
    MembershipPublic,
    TopicsIn,
    TopicsPublic,
    WaveCreate,
    WavePatch,
    WavePublic,
)

router = APIRouter(prefix="/v1", tags=["programme"])


@router.get("/me/topics", response_model=TopicsPublic)
async def get_topics(who: EmployeePrincipal, session: SessionDep) -> TopicsPublic:
    return await members.get_topics(session, who)


@router.put("/me/topics", response_model=TopicsPublic)
async def put_topics(body: TopicsIn, who: EmployeePrincipal, session: SessionDep) -> TopicsPublic:
    return await members.put_topics(session, who, body)


@router.get("/me/membership", response_model=MembershipPublic)
async def get_membership(who: EmployeePrincipal, session: SessionDep) -> MembershipPublic:
    return await members.get_membership(session, who)


@router.put("/me/membership", response_model=MembershipPublic)
async def put_membership(body: MembershipIn, who: EmployeePrincipal, session: SessionDep) -> MembershipPublic:
    return await members.put_membership(session, who, body)


@router.delete("/members/{employee_id}", status_code=status.HTTP_204_NO_CONTENT)
async def erase_member(employee_id: str, who: AdminPrincipal, session: SessionDep) -> Response:
    """Erase a person: content forgets them and every other service is told to (member.erased)."""
    await members.erase_member(session, who, employee_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/waves", response_model=Page[WavePublic])
async def list_waves(who: AdminPrincipal, session: SessionDep, page: PageDep) -> Page[WavePublic]:
    rows, cursor = await waves.list_waves(session, who, page)
    return Page(items=[waves.to_public(w) for w in rows], next_cursor=cursor)


@router.post("/waves", status_code=status.HTTP_201_CREATED, response_model=WavePublic)
async def create_wave(body: WaveCreate, who: AdminPrincipal, session: SessionDep) -> WavePublic:
    return waves.to_public(await waves.create_wave(session, who, body))


@router.get("/waves/{wave_id}", response_model=WavePublic)
async def get_wave(wave_id: str, who: AdminPrincipal, session: SessionDep) -> WavePublic:
    return waves.to_public(await waves.load_wave(session, who.tenant_id, wave_id))


@router.patch("/waves/{wave_id}", response_model=WavePublic)
async def patch_wave(wave_id: str, body: WavePatch, who: AdminPrincipal, session: SessionDep) -> WavePublic:
    return waves.to_public(await waves.patch_wave(session, who, wave_id, body))


@router.delete("/waves/{wave_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_wave(wave_id: str, who: AdminPrincipal, session: SessionDep) -> Response:
    await waves.delete_wave(session, who, wave_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
