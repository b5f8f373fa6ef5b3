"""Events the gamification service publishes (topic ``advocacy.gamification``)."""

from __future__ import annotations

from datetime import datetime

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
    """A ledger entry: an award (positive) or a reversal (negative), with the event and rule behind it."""

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
