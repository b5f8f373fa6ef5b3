"""Routes: parse, call a use case, return a schema. No SQL here."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from advocacy_common.auth import AdminPrincipal, EmployeePrincipal
from advocacy_common.db import SessionDep
from advocacy_common.openapi import answers
from advocacy_common.pagination import PageDep
from advocacy_gamification.adapters.reads import ReadSessionDep
from advocacy_gamification.domain.rules import RulesIn
from advocacy_gamification.features import badges, challenges, leaderboard, points, rewards, rules
from advocacy_gamification.parts import parts_of
from advocacy_gamification.schemas import (
    Badges,
    CancelIn,
    ChallengeDetail,
    ChallengeIn,
    ChallengeOut,
    Challenges,
    CurrentRules,
    Leaderboard,
    LeaderboardMe,
    MyBadges,
    MyPoints,
    RedemptionOut,
    Redemptions,
    ReversalIn,
    Reversals,
    RewardIn,
    RewardOut,
    Rewards,
    RulesOut,
    SimulatedBoard,
    StreamTicket,
    TeamBoard,
    WindowParam,
)

router = APIRouter(prefix="/v1", tags=["gamification"])


TeamQuery = Annotated[str | None, Query(min_length=1, max_length=100)]
ChallengeQuery = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get("/leaderboard", response_model=Leaderboard)
async def get_leaderboard(
    who: EmployeePrincipal,
    session: ReadSessionDep,
    page: PageDep,
    window: WindowParam = "all",
    team: TeamQuery = None,
    challenge: ChallengeQuery = None,
) -> Leaderboard:
    return Leaderboard.model_validate(await leaderboard.board(session, who.tenant_id, window, team, challenge, page))


@router.get("/leaderboard/me", operation_id="getMyLeaderboardPlace", response_model=LeaderboardMe)
async def get_my_place(
    who: EmployeePrincipal, session: ReadSessionDep, window: WindowParam = "all", challenge: ChallengeQuery = None
) -> LeaderboardMe:
    return LeaderboardMe.model_validate(await leaderboard.me(session, who.tenant_id, who.sub, window, challenge))


@router.get("/leaderboard/teams", operation_id="getTeamLeaderboard", response_model=TeamBoard)
async def get_team_board(
    who: EmployeePrincipal, session: ReadSessionDep, page: PageDep, window: WindowParam = "all"
) -> TeamBoard:
    """Teams ranked by points per member in the window. ``members`` is the company directory's count
    of the team's active people when the directory (SCIM) knows the team, else the ranked people
    known in it; points are those of ranked people (not opted out, hidden or deactivated)."""
    return TeamBoard.model_validate(await leaderboard.teams(session, who.tenant_id, window, page))


@router.post("/leaderboard/stream-tickets", response_model=StreamTicket, status_code=201)
async def create_stream_ticket(who: EmployeePrincipal, request: Request) -> StreamTicket:
    """A 60-second ticket to open ``/v1/leaderboard/stream`` (EventSource cannot send headers)."""
    tickets = parts_of(request.app.state.runtime).tickets
    ticket, expires_at = await tickets.issue(who)
    return StreamTicket(ticket=ticket, expires_at=expires_at)


@router.get("/leaderboard/stream", responses=answers(429), response_class=StreamingResponse)
async def stream_leaderboard(
    request: Request,
    ticket: Annotated[str, Query(min_length=1, max_length=2048)],
    window: WindowParam = "all",
    team: TeamQuery = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> StreamingResponse:
    """Server-Sent Events: the top of the board now and whenever it changes (at most 4 a second). A
    ticket opens one stream; a person, a tenant and a server each have a cap on open streams (429
    with Retry-After). The stream ends, with ``event: end`` and a reason, when the token the ticket
    was issued for expires (``token_expired``) or the person is erased (``erased``)."""
    parts = parts_of(request.app.state.runtime)
    holder = await parts.tickets.redeem(ticket)
    hub = parts.board_hub
    key = (holder.tenant_id, window, team, limit)
    slot = hub.reserve(holder.tenant_id, holder.sub, key, holder.session_ends)
    return StreamingResponse(
        hub.events(key, slot),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/rules", response_model=CurrentRules)
async def get_rules(who: EmployeePrincipal, session: SessionDep) -> CurrentRules:
    return CurrentRules.model_validate(await rules.current(session, who.tenant_id))


@router.put("/rules", operation_id="replaceRules", response_model=RulesOut)
async def put_rules(body: RulesIn, admin: AdminPrincipal, session: SessionDep) -> RulesOut:
    return RulesOut.model_validate(await rules.put(session, admin.tenant_id, admin.sub, body))


@router.post("/rules/simulate", response_model=SimulatedBoard)
async def simulate_rules(
    body: RulesIn,
    admin: AdminPrincipal,
    session: SessionDep,
    page: PageDep,
    window: WindowParam = "all",
    team: TeamQuery = None,
) -> SimulatedBoard:
    result = await rules.simulate(session, admin.tenant_id, body.body(), window, team, page)
    return SimulatedBoard.model_validate(result)


@router.get("/points/me", response_model=MyPoints)
async def get_my_points(who: EmployeePrincipal, session: SessionDep, page: PageDep) -> MyPoints:
    return MyPoints.model_validate(await points.my_points(session, who.tenant_id, who.sub, page))


@router.post(
    "/points/reversals",
    operation_id="createPointsReversal",
    responses=answers(409),
    response_model=Reversals,
    status_code=201,
)
async def post_reversal(body: ReversalIn, admin: AdminPrincipal, session: SessionDep) -> Reversals:
    reason = f"{body.reason} (by {admin.sub})"
    result = await points.admin_reverse(session, admin.tenant_id, body.employee_id, body.event_id, reason, by=admin.sub)
    return Reversals.model_validate(result)


# -- rewards -----------------------------------------------------------------------------------------
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)]
RedemptionStatus = Annotated[Literal["pending", "fulfilled", "cancelled"] | None, Query()]


@router.get("/rewards", response_model=Rewards)
async def list_rewards(who: EmployeePrincipal, session: SessionDep, page: PageDep) -> Rewards:
    return Rewards.model_validate(await rewards.catalogue(session, who.tenant_id, page))


@router.post("/rewards", response_model=RewardOut, status_code=201)
async def create_reward(body: RewardIn, admin: AdminPrincipal, session: SessionDep) -> RewardOut:
    created = await rewards.create(
        session, admin.tenant_id, admin.sub, body.name, body.description, body.cost_points, body.stock, body.value
    )
    return RewardOut.model_validate(created)


@router.get("/rewards/{reward_id}", response_model=RewardOut)
async def get_reward(reward_id: str, who: EmployeePrincipal, session: SessionDep) -> RewardOut:
    return RewardOut.model_validate(await rewards.get(session, who.tenant_id, reward_id))


@router.post("/rewards/{reward_id}/redeem", responses=answers(409), response_model=RedemptionOut, status_code=201)
async def redeem_reward(
    reward_id: str, who: EmployeePrincipal, session: SessionDep, key: IdempotencyKey, response: Response
) -> RedemptionOut:
    result = await rewards.redeem(session, who.tenant_id, who.sub, reward_id, key)
    if result.pop("replayed"):
        response.headers["Idempotent-Replayed"] = "true"
    return RedemptionOut.model_validate(result)


@router.get("/redemptions", response_model=Redemptions)
async def list_redemptions(
    who: EmployeePrincipal,
    session: SessionDep,
    page: PageDep,
    employee_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    status: RedemptionStatus = None,
) -> Redemptions:
    """Mine; an admin sees everyone's (filter by ``employee_id``)."""
    if not who.is_admin:
        employee_id = who.sub
    result = await rewards.redemptions(session, who.tenant_id, page, employee_id=employee_id, status=status)
    return Redemptions.model_validate(result)


@router.post("/redemptions/{redemption_id}/fulfil", responses=answers(409), response_model=RedemptionOut)
async def fulfil_redemption(redemption_id: str, admin: AdminPrincipal, session: SessionDep) -> RedemptionOut:
    return RedemptionOut.model_validate(await rewards.fulfil(session, admin.tenant_id, redemption_id))


@router.post("/redemptions/{redemption_id}/cancel", responses=answers(409), response_model=RedemptionOut)
async def cancel_redemption(
    redemption_id: str, admin: AdminPrincipal, session: SessionDep, body: CancelIn | None = None
) -> RedemptionOut:
    reason = body.reason if body else None
    return RedemptionOut.model_validate(await rewards.cancel(session, admin.tenant_id, redemption_id, reason))


# -- badges ------------------------------------------------------------------------------------------
@router.get("/badges", response_model=Badges)
async def list_badges(who: EmployeePrincipal, session: SessionDep) -> Badges:
    return Badges.model_validate(await badges.catalogue(session, who.tenant_id))


@router.get("/badges/me", operation_id="listMyBadges", response_model=MyBadges)
async def my_badges(who: EmployeePrincipal, session: SessionDep) -> MyBadges:
    return MyBadges.model_validate(await badges.mine(session, who.tenant_id, who.sub))


# -- challenges --------------------------------------------------------------------------------------
@router.get("/challenges", response_model=Challenges)
async def list_challenges(who: EmployeePrincipal, session: SessionDep, page: PageDep) -> Challenges:
    return Challenges.model_validate(await challenges.listing(session, who.tenant_id, page))


@router.post("/challenges", response_model=ChallengeOut, status_code=201)
async def create_challenge(body: ChallengeIn, admin: AdminPrincipal, session: SessionDep) -> ChallengeOut:
    created = await challenges.create(
        session,
        admin.tenant_id,
        admin.sub,
        body.name,
        body.starts_at,
        body.ends_at,
        body.goal.kind,
        body.goal.value,
        body.content_ids,
    )
    return ChallengeOut.model_validate(created)


@router.get("/challenges/{challenge_id}", response_model=ChallengeDetail)
async def get_challenge(challenge_id: str, who: EmployeePrincipal, session: SessionDep) -> ChallengeDetail:
    return ChallengeDetail.model_validate(await challenges.detail(session, who.tenant_id, challenge_id, who.sub))
