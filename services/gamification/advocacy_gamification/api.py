"""Routes: parse, call a use case, return a schema. No SQL here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from advocacy_common.auth import AdminPrincipal, CurrentPrincipal
from advocacy_common.db import SessionDep
from advocacy_common.pagination import PageDep
from advocacy_gamification import leaderboard, points, rulesets
from advocacy_gamification.rules import RulesIn
from advocacy_gamification.schemas import (
    CurrentRules,
    Leaderboard,
    LeaderboardMe,
    MyPoints,
    ReversalIn,
    Reversals,
    RulesOut,
    SimulatedBoard,
    TeamBoard,
    WindowParam,
)

router = APIRouter(prefix="/v1", tags=["gamification"])

TeamQuery = Annotated[str | None, Query(min_length=1, max_length=100)]
ChallengeQuery = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get("/leaderboard", response_model=Leaderboard)
async def get_leaderboard(
    who: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    window: WindowParam = "all",
    team: TeamQuery = None,
    challenge: ChallengeQuery = None,
) -> Leaderboard:
    return Leaderboard.model_validate(await leaderboard.board(session, who.tenant_id, window, team, challenge, page))


@router.get("/leaderboard/me", response_model=LeaderboardMe)
async def get_my_place(
    who: CurrentPrincipal, session: SessionDep, window: WindowParam = "all", challenge: ChallengeQuery = None
) -> LeaderboardMe:
    return LeaderboardMe.model_validate(await leaderboard.me(session, who.tenant_id, who.sub, window, challenge))


@router.get("/leaderboard/teams", response_model=TeamBoard)
async def get_team_board(
    who: CurrentPrincipal, session: SessionDep, page: PageDep, window: WindowParam = "all"
) -> TeamBoard:
    return TeamBoard.model_validate(await leaderboard.teams(session, who.tenant_id, window, page))


@router.get("/rules", response_model=CurrentRules)
async def get_rules(who: CurrentPrincipal, session: SessionDep) -> CurrentRules:
    return CurrentRules.model_validate(await rulesets.current(session, who.tenant_id))


@router.put("/rules", response_model=RulesOut)
async def put_rules(body: RulesIn, admin: AdminPrincipal, session: SessionDep) -> RulesOut:
    return RulesOut.model_validate(await rulesets.put(session, admin.tenant_id, admin.sub, body))


@router.post("/rules/simulate", response_model=SimulatedBoard)
async def simulate_rules(
    body: RulesIn,
    admin: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    window: WindowParam = "all",
    team: TeamQuery = None,
) -> SimulatedBoard:
    result = await rulesets.simulate(session, admin.tenant_id, body.body(), window, team, page)
    return SimulatedBoard.model_validate(result)


@router.get("/points/me", response_model=MyPoints)
async def get_my_points(who: CurrentPrincipal, session: SessionDep, page: PageDep) -> MyPoints:
    return MyPoints.model_validate(await points.my_points(session, who.tenant_id, who.sub, page))


@router.post("/points/reversals", response_model=Reversals, status_code=201)
async def post_reversal(body: ReversalIn, admin: AdminPrincipal, session: SessionDep) -> Reversals:
    reason = f"{body.reason} (by {admin.sub})"
    result = await points.admin_reverse(session, admin.tenant_id, body.employee_id, body.event_id, reason)
    return Reversals.model_validate(result)
