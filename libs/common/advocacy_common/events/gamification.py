"""Events the gamification service publishes (topic ``advocacy.gamification``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from advocacy_common import topics
from advocacy_common.events.base import EventData, register
from advocacy_common.money import Money


class _EmployeeEvent(EventData):
    TOPIC = topics.GAMIFICATION
    employee_id: str

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:{self.employee_id}"


@register
class PointsAwarded(_EmployeeEvent):
    """A ledger entry: an award (positive) or a reversal (negative), with the event and rule behind it.

    Deprecated (docs/adr/0019-points-awarded-per-batch.md): published only for the tenants listed in
    ``GAMIFICATION_POINTS_AWARDED_V1_TENANTS``, until 2027-06-30; :class:`PointsAwardedV2` is published
    for every tenant."""

    TYPE = "io.advocacy.points.awarded.v1"
    PARTNER_VISIBLE = True

    entry_id: str
    points: int
    action: str
    cause_event_id: str
    rule_version: int
    occurred_at: datetime
    # added in place (optional, so older readers and writers still agree):
    kind: str = "award"  # award | reversal
    capped: bool = False  # over the tenant's daily cap: recorded with 0 points
    reverses_entry_id: str | None = None
    reason: str | None = None


class PointsOfAction(BaseModel):
    """One (action, kind) line of :class:`PointsAwardedV2`: how many entries, their points, how many capped."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: str
    kind: str  # award | reversal
    entries: int
    points: int
    capped: int = 0


@register
class PointsAwardedV2(_EmployeeEvent):
    """The ledger entries one consumed batch (or one admin action) appended for one person, summed.

    Replaces ``points.awarded.v1``, one event per entry (per click), which was a third of the
    gamification consumer's time (docs/adr/0019-points-awarded-per-batch.md). The person's total
    moves by ``points``; the entries themselves are in their ledger (``first_entry_id`` ..
    ``last_entry_id``, ids grow). ``by_action`` has at most one line per (action, kind)."""

    TYPE = "io.advocacy.points.awarded.v2"
    PARTNER_VISIBLE = True

    points: int
    entry_count: int
    first_entry_id: str
    last_entry_id: str
    first_occurred_at: datetime
    last_occurred_at: datetime
    by_action: list[PointsOfAction]


@register
class BadgeEarned(_EmployeeEvent):
    TYPE = "io.advocacy.badge.earned.v1"
    PARTNER_VISIBLE = True

    badge: str
    earned_at: datetime


@register
class RewardRedeemed(_EmployeeEvent):
    """Points spent on a reward; ``value`` is what the reward costs the programme (ROI counts it)."""

    TYPE = "io.advocacy.reward.redeemed.v1"
    PARTNER_VISIBLE = True

    redemption_id: str
    reward_id: str
    cost_points: int
    value: Money | None = None
    redeemed_at: datetime


@register
class RedemptionCancelled(_EmployeeEvent):
    TYPE = "io.advocacy.reward.redemption_cancelled.v1"
    PARTNER_VISIBLE = True

    redemption_id: str
    reward_id: str
    refunded_points: int
    value: Money | None = None
    cancelled_at: datetime


@register
class RewardFulfilled(_EmployeeEvent):
    """An admin handed over a redeemed reward (the redemption moved pending -> fulfilled)."""

    TYPE = "io.advocacy.reward.fulfilled.v1"

    redemption_id: str
    reward_id: str
    reward_name: str
    fulfilled_at: datetime


class _ChallengeEvent(EventData):
    """A challenge's events share its key, so they arrive in order: created, then each winner, then
    finalised."""

    TOPIC = topics.GAMIFICATION
    challenge_id: str

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:challenge:{self.challenge_id}"

    def subject(self) -> str | None:
        return self.challenge_id


@register
class ChallengeCreated(_ChallengeEvent):
    """A challenge was set up. Its audience is the tenant's whole programme (challenges are not
    targeted); ``content_ids``, when given, are the items that count towards it."""

    TYPE = "io.advocacy.challenge.created.v1"

    name: str
    starts_at: datetime
    ends_at: datetime
    goal_kind: str  # threshold | top_n | team_total
    goal_value: int
    content_ids: list[str] | None = None
    created_at: datetime


@register
class ChallengeWon(_ChallengeEvent):
    """One winner of a finalised challenge: a person (``employee_id``), or a team (``team``, for a
    team-total goal; ``employee_id`` is then None). One event per winner rather than a list in
    ``challenge.finalised``: a threshold challenge can have thousands of winners, and an event stays
    small. Published just before ``challenge.finalised``, under the same key."""

    TYPE = "io.advocacy.challenge.won.v1"

    name: str
    employee_id: str | None = None
    team: str | None = None
    rank: int
    points: int
    finalised_at: datetime


@register
class ChallengeFinalised(_ChallengeEvent):
    """The challenge ended and its winners are fixed (each one a ``challenge.won`` before this)."""

    TYPE = "io.advocacy.challenge.finalised.v1"

    name: str
    ends_at: datetime
    goal_kind: str
    winners: int
    finalised_at: datetime
