"""HTTP routes of the content service: parse, call the use case, return schemas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from advocacy_common.auth import AdminPrincipal, CurrentPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import Page, PageDep
from advocacy_content import service
from advocacy_content.db import ContentItem
from advocacy_content.domain import Status
from advocacy_content.schemas import ContentCreate, ContentPublic

router = APIRouter(prefix="/v1", tags=["content"])


def _public(item: ContentItem) -> ContentPublic:
    return ContentPublic.model_validate(item, from_attributes=True)


@router.post("/content", status_code=status.HTTP_201_CREATED, response_model=ContentPublic)
async def create_content(body: ContentCreate, who: AdminPrincipal, session: SessionDep) -> ContentPublic:
    return _public(await service.create_content(session, who, body))


@router.get("/content", response_model=Page[ContentPublic])
async def list_content(
    who: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(Status.ALL) + ")$")] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    network: Annotated[str | None, Query(max_length=20)] = None,
    topic: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ContentPublic]:
    items, cursor = await service.list_board(
        session, who, page, status=status, tag=tag, network=network, topic=topic, q=q
    )
    return Page(items=[_public(i) for i in items], next_cursor=cursor)


@router.get("/content/{content_id}", response_model=ContentPublic)
async def get_content(content_id: str, who: CurrentPrincipal, session: SessionDep) -> ContentPublic:
    return _public(await service.get_content(session, who, content_id))
