"""HTTP routes of the sharing service."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from advocacy_common.auth import CurrentPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.networks import Network, intent_url
from advocacy_sharing import service
from advocacy_sharing.db import Share
from advocacy_sharing.schemas import ShareCreate, SharePublic
from advocacy_sharing.settings import SharingSettings

router = APIRouter(prefix="/v1", tags=["sharing"])


def _public(share: Share, settings: SharingSettings, warnings: list[str] | None = None) -> SharePublic:
    link = f"{settings.public_base_url.rstrip('/')}/r/{share.code}"
    return SharePublic(
        id=share.id,
        code=share.code,
        link=link,
        intent_url=intent_url(Network(share.network), link, share.message),
        network=share.network,
        content_id=share.content_id,
        message=share.message,
        warnings=warnings or [],
    )


@router.post("/shares", status_code=status.HTTP_201_CREATED, response_model=SharePublic)
async def create_share(
    body: ShareCreate, who: CurrentPrincipal, session: SessionDep, request: Request, response: Response
) -> SharePublic:
    share, created = await service.create_share(session, who, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _public(share, request.app.state.settings)
