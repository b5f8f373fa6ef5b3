"""Roll-out waves (routes of features/waves.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from advocacy_common.auth import AdminPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import Page, PageDep
from advocacy_content.features import waves
from advocacy_content.schemas import WaveCreate, WavePatch, WavePublic

router = APIRouter(prefix="/v1", tags=["programme"])


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


@router.patch("/waves/{wave_id}", operation_id="updateWave", response_model=WavePublic)
async def patch_wave(wave_id: str, body: WavePatch, who: AdminPrincipal, session: SessionDep) -> WavePublic:
    return waves.to_public(await waves.patch_wave(session, who, wave_id, body))


@router.delete("/waves/{wave_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_wave(wave_id: str, who: AdminPrincipal, session: SessionDep) -> Response:
    await waves.delete_wave(session, who, wave_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
