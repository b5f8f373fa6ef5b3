"""A tenant's points rules: what each action earns, daily caps, campaign multipliers, badge thresholds.

Pure: no database, no FastAPI. A tenant's rules are versioned; each version takes effect at its
``effective_at`` and an event is scored by the version in effect when it *occurred*, so a rule
change is never retroactive and a redelivered event maps to the same version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from advocacy_common.instants import Instant

Action = Literal["share", "click", "conversion", "suggestion_approved"]
ACTIONS: tuple[Action, ...] = ("share", "click", "conversion", "suggestion_approved")
ConversionKind = Literal["signup", "lead", "sale"]

MAX_POINTS = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConversionPoints(_Strict):
    signup: int = Field(20, ge=0, le=MAX_POINTS)
    lead: int = Field(30, ge=0, le=MAX_POINTS)
    sale: int = Field(50, ge=0, le=MAX_POINTS)


class PointsTable(_Strict):
    share: int = Field(10, ge=0, le=MAX_POINTS)
    click: int = Field(1, ge=0, le=MAX_POINTS)
    conversion: ConversionPoints = ConversionPoints()
    suggestion_approved: int = Field(15, ge=0, le=MAX_POINTS)


class DailyCaps(_Strict):
    """At most this many awards of the action per employee per day (tenant's calendar day);
    ``None`` = no cap. Awards beyond the cap are recorded with 0 points (``capped``)."""

    share: int | None = Field(None, ge=1, le=MAX_POINTS)
    click: int | None = Field(None, ge=1, le=MAX_POINTS)
    conversion: int | None = Field(None, ge=1, le=MAX_POINTS)
    suggestion_approved: int | None = Field(None, ge=1, le=MAX_POINTS)

    def cap(self, action: str) -> int | None:
        value: int | None = getattr(self, action, None)
        return value


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("must include a time zone offset (RFC 3339)")
    return v


ContentId = Annotated[str, Field(min_length=1, max_length=200)]


class Multiplier(_Strict):
    """A campaign: points for matching awards are multiplied by ``factor``. An award matches when
    its action is in ``actions`` (all if omitted), its content in ``content_ids`` (any if omitted)
    and it occurred in [``starts_at``, ``ends_at``). Several matching: the highest factor applies."""

    name: str | None = Field(None, max_length=200)
    factor: Decimal = Field(gt=0, le=10, max_digits=4, decimal_places=2)
    actions: list[Action] | None = Field(None, min_length=1, max_length=len(ACTIONS))
    content_ids: list[ContentId] | None = Field(None, min_length=1, max_length=500)
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    _aware_start = field_validator("starts_at")(_aware)
    _aware_end = field_validator("ends_at")(_aware)

    @model_validator(mode="after")
    def _order(self) -> Multiplier:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def matches(self, action: str, content_id: str | None, at: datetime) -> bool:
        if self.actions is not None and action not in self.actions:
            return False
        if self.content_ids is not None and content_id not in self.content_ids:
            return False
        if self.starts_at is not None and at < self.starts_at:
            return False
        return not (self.ends_at is not None and at >= self.ends_at)


class BadgeThresholds(_Strict):
    """How much of something earns each badge; ``None`` switches the badge off."""

    first_share: int | None = Field(1, ge=1, le=MAX_POINTS)
    share_milestone: int | None = Field(10, ge=1, le=MAX_POINTS)
    click_milestone: int | None = Field(100, ge=1, le=MAX_POINTS)
    first_conversion: int | None = Field(1, ge=1, le=MAX_POINTS)
    sharing_streak: int | None = Field(4, ge=1, le=520)


SharePointsPer = Literal["content", "network"]


class RulesBody(_Strict):
    """What an admin sets (``PUT /v1/rules``); every part defaults to the documented defaults.

    ``share_points_per``: ``"content"`` (the default) credits share points once per employee and
    content item, whatever the number of networks it is shared on (a further network's share is
    recorded with 0 points); ``"network"`` credits every network's share, as before issue 13. A
    stored version without the field reads as ``"content"``; ledger entries are never re-scored.
    """

    points: PointsTable = PointsTable()
    daily_caps: DailyCaps = DailyCaps()
    multipliers: list[Multiplier] = Field(default_factory=list, max_length=50)
    badges: BadgeThresholds = BadgeThresholds()
    share_points_per: SharePointsPer = "content"

    def once_per_content(self, action: str) -> bool:
        """Whether an award of ``action`` earns nothing when the employee was already credited for
        the same content item."""
        return action == "share" and self.share_points_per == "content"

    def base_points(self, action: str, detail: str | None = None) -> int:
        if action == "share":
            return self.points.share
        if action == "click":
            return self.points.click
        if action == "suggestion_approved":
            return self.points.suggestion_approved
        if action == "conversion":
            value: int = getattr(self.points.conversion, detail or "", 0)
            return value
        raise ValueError(f"unknown action {action!r}")

    def factor(self, action: str, content_id: str | None, at: datetime) -> Decimal:
        return max((m.factor for m in self.multipliers if m.matches(action, content_id, at)), default=Decimal(1))

    def points_for(self, action: str, detail: str | None, content_id: str | None, at: datetime) -> int:
        """Points an award earns before any daily cap (base x the best matching multiplier)."""
        base = self.base_points(action, detail)
        if not self.multipliers:  # x 1: the base (no Decimal arithmetic per click, issue 19)
            return base
        factor = self.factor(action, content_id, at)
        return int((Decimal(base) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class MultiplierIn(Multiplier):
    """A multiplier as an admin sends it: its times are ``Instant``s. A stored rule set is read back
    as ``Multiplier``, so a time stored before the bounds existed (9999-12-31, say) still reads."""

    starts_at: Instant | None = None
    ends_at: Instant | None = None


class RulesIn(RulesBody):
    multipliers: list[MultiplierIn] = Field(default_factory=list, max_length=50)  # type: ignore[assignment]
    effective_at: Instant | None = None

    def body(self) -> RulesBody:
        return RulesBody.model_validate(self.model_dump(exclude={"effective_at"}))


DEFAULT_BODY = RulesBody()


@dataclass(frozen=True, slots=True)
class RuleVersion:
    version: int
    effective_at: datetime | None  # None: the built-in defaults (version 0), effective for ever
    body: RulesBody


DEFAULT_VERSION = RuleVersion(0, None, DEFAULT_BODY)


def version_at(versions: Sequence[RuleVersion], at: datetime) -> RuleVersion:
    """The version in effect at ``at``: the latest effective_at <= at (ties: the higher version)."""
    best = DEFAULT_VERSION
    for v in versions:
        if v.effective_at is None or v.effective_at > at:
            continue
        if best.effective_at is None or (v.effective_at, v.version) > (best.effective_at, best.version):
            best = v
    return best


# -- scoring a sequence of awards (simulation and the reference model) --------------------------------
@dataclass(frozen=True, slots=True)
class AwardFact:
    """What happened, independent of any rules: enough to score it under any version."""

    employee_id: str
    action: str
    detail: str | None
    content_id: str | None
    occurred_at: datetime
    # a reversed award still took its place under the day's cap, but earns nothing
    reversed: bool = False


class CapCounter:
    """Awards so far per (employee, action, tenant day); decides whether the next one is capped."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.counts: dict[tuple[str, str, date], int] = {}

    def day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def take(self, caps: DailyCaps, employee_id: str, action: str, at: datetime) -> bool:
        """Count one award; False when it is over the cap (it earns 0)."""
        key = (employee_id, action, self.day(at))
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        cap = caps.cap(action)
        return cap is None or n <= cap


def score(
    facts: Iterable[AwardFact],
    body: RulesBody,
    zone: ZoneInfo,
    credited: Iterable[tuple[str, str, str]] = (),
) -> dict[str, int]:
    """Points per employee for these awards under ``body`` (caps applied in time order).
    ``credited``: (employee, action, content) already credited before these facts (see
    :meth:`RulesBody.once_per_content`)."""
    totals: dict[str, int] = {}
    caps = CapCounter(zone)
    seen = set(credited)
    for f in sorted(facts, key=lambda f: f.occurred_at):
        pts = body.points_for(f.action, f.detail, f.content_id, f.occurred_at)
        over_cap = not caps.take(body.daily_caps, f.employee_id, f.action, f.occurred_at)  # counts even a repeat
        if over_cap or f.reversed or repeat_credit(body, seen, f.employee_id, f.action, f.content_id):
            pts = 0
        if pts > 0 and f.content_id is not None:
            seen.add((f.employee_id, f.action, f.content_id))
        totals[f.employee_id] = totals.get(f.employee_id, 0) + pts
    return totals


def repeat_credit(
    body: RulesBody, credited: set[tuple[str, str, str]], employee_id: str, action: str, content_id: str | None
) -> bool:
    """Whether this award would credit the employee a second time for the same content item (it
    then earns 0). An award that earned nothing (capped, reversed) credited nothing."""
    return content_id is not None and body.once_per_content(action) and (employee_id, action, content_id) in credited
