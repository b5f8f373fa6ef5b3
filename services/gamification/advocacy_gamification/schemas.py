"""Request and response models. Request bodies refuse unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from advocacy_common.instants import within_years
from advocacy_common.money import Money
from advocacy_gamification.domain.rules import BadgeThresholds, DailyCaps, Multiplier, PointsTable, SharePointsPer


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- leaderboards ------------------------------------------------------------------------------------
class LeaderboardEntry(BaseModel):
    rank: int
    employee_id: str | None
    name: str | None
    team: str | None
    points: int


class Leaderboard(BaseModel):
    window: str
    challenge: str | None = None
    starts_at: datetime | None
    ends_at: datetime | None
    items: list[LeaderboardEntry]
    next_cursor: str | None = None


class LeaderboardMe(BaseModel):
    window: str
    challenge: str | None = None
    rank: int | None
    points: int
    gap_to_next: int | None


class TeamEntry(BaseModel):
    rank: int
    team: str
    points: int
    members: int
    points_per_member: float


class TeamBoard(BaseModel):
    window: str
    starts_at: datetime | None
    ends_at: datetime | None
    items: list[TeamEntry]
    next_cursor: str | None = None


class SimulatedEntry(LeaderboardEntry):
    current_points: int
    current_rank: int | None


class SimulatedBoard(BaseModel):
    window: str
    starts_at: datetime | None
    ends_at: datetime | None
    items: list[SimulatedEntry]
    next_cursor: str | None = None


class StreamTicket(BaseModel):
    ticket: str
    expires_at: datetime


# -- rules -------------------------------------------------------------------------------------------
class RulesOut(BaseModel):
    version: int
    effective_at: datetime | None
    points: PointsTable
    daily_caps: DailyCaps
    multipliers: list[Multiplier]
    badges: BadgeThresholds
    share_points_per: SharePointsPer


class CurrentRules(RulesOut):
    scheduled: list[RulesOut] = []


# -- points ------------------------------------------------------------------------------------------
class LedgerItem(BaseModel):
    id: str
    type: str
    action: str
    detail: str | None
    points: int
    balance_change: int
    event_id: str
    rule_version: int
    ref: str | None
    content_id: str | None
    capped: bool
    reverses_entry_id: str | None
    reason: str | None
    occurred_at: datetime
    created_at: datetime


class MyPoints(BaseModel):
    employee_id: str
    balance: int
    points: int
    items: list[LedgerItem]
    next_cursor: str | None = None


class ReversalIn(_In):
    employee_id: str = Field(min_length=1, max_length=200)
    event_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)


class Reversals(BaseModel):
    items: list[LedgerItem]


WindowParam = Literal["all", "week", "month"]


# -- rewards -----------------------------------------------------------------------------------------
class RewardIn(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    cost_points: int = Field(ge=1, le=1_000_000_000)
    stock: int = Field(ge=0, le=1_000_000_000)
    value: Money | None = None


class RewardOut(BaseModel):
    id: str
    name: str
    description: str | None
    cost_points: int
    stock: int
    value: Money | None
    created_at: datetime


class Rewards(BaseModel):
    items: list[RewardOut]
    next_cursor: str | None = None


class RedemptionOut(BaseModel):
    id: str
    reward_id: str
    employee_id: str
    cost_points: int
    value: Money | None
    status: Literal["pending", "fulfilled", "cancelled"]
    created_at: datetime
    fulfilled_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class Redemptions(BaseModel):
    items: list[RedemptionOut]
    next_cursor: str | None = None


class CancelIn(_In):
    reason: str | None = Field(None, max_length=500)


# -- challenges --------------------------------------------------------------------------------------
class Goal(_In):
    kind: Literal["threshold", "top_n", "team_total"]
    value: int = Field(ge=1, le=1_000_000_000)


#: Years a challenge may start or end in: no programme runs outside them (an ``Instant`` narrowed).
CHALLENGE_YEARS = (2000, 2999)
ChallengeInstant = Annotated[datetime, AfterValidator(within_years(*CHALLENGE_YEARS))]


class ChallengeIn(_In):
    name: str = Field(min_length=1, max_length=200)
    starts_at: ChallengeInstant
    ends_at: ChallengeInstant
    goal: Goal
    content_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=1, max_length=500
    )


class ChallengeOut(BaseModel):
    id: str
    name: str
    starts_at: datetime
    ends_at: datetime
    goal: Goal
    content_ids: list[str] | None
    status: Literal["upcoming", "active", "ended"]
    finalised_at: datetime | None
    created_at: datetime


class Challenges(BaseModel):
    items: list[ChallengeOut]
    next_cursor: str | None = None


class ChallengeEntry(LeaderboardEntry):
    reached: bool | None = None


class TeamProgress(BaseModel):
    rank: int
    team: str
    points: int
    reached: bool


class ChallengeProgress(BaseModel):
    participants: int
    top: list[ChallengeEntry]
    teams: list[TeamProgress] | None


class MyProgress(BaseModel):
    rank: int | None
    points: int
    gap_to_next: int | None


class ChallengeDetail(ChallengeOut):
    progress: ChallengeProgress
    me: MyProgress
    winners: list[LeaderboardEntry] | None


# -- badges ------------------------------------------------------------------------------------------
class BadgeOut(BaseModel):
    badge: str
    name: str
    description: str
    threshold: int


class Badges(BaseModel):
    items: list[BadgeOut]
    next_cursor: str | None = None


class EarnedBadge(BaseModel):
    badge: str
    name: str
    earned_at: datetime


class BadgeCounts(BaseModel):
    shares: int
    clicks: int
    conversions: int
    streak_weeks: int


class MyBadges(BaseModel):
    items: list[EarnedBadge]
    counts: BadgeCounts
    next_cursor: str | None = None
