from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from advocacy_common.auth import CurrentPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import PageDep
from advocacy_gamification import service
from advocacy_gamification.schemas import Leaderboard

router = APIRouter(prefix="/v1", tags=["gamification"])


@router.get("/leaderboard", response_model=Leaderboard)
async def leaderboard(
    who: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    window: Literal["all", "week", "month"] = "all",
    team: Annotated[str | None, Query(max_length=100)] = None,
) -> Leaderboard:
    return Leaderboard.model_validate(await service.leaderboard(session, who, window, team, page))
