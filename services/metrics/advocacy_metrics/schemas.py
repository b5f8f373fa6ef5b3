"""Response models of the metrics API (money as ``{"amount": "12.50", "currency": "EUR"}``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GroupBy(StrEnum):
    day = "day"
    week = "week"
    network = "network"
    team = "team"
    content = "content"
    employee = "employee"
    country = "country"
    device = "device"
    referrer = "referrer"
    reason = "reason"  # why clicks were not counted (bot verdicts' reasons)


class SummaryOrder(StrEnum):
    key = "key"  # the groups' keys: days in time order, names in code-point order
    clicks = "clicks"  # counted clicks, most first; ties in key order


class MoneyOut(BaseModel):
    amount: str
    currency: str


class ClicksByVerdict(BaseModel):
    counted: int
    bot: int
    duplicate: int
    self: int
    rate_limited: int
    invalidated: int


class Measures(BaseModel):
    """Every measure of one group. Ratios are ``null`` when their denominator is zero; share-based
    measures are ``null`` when grouping by a click-only dimension (country, device, referrer)."""

    shares: int | None = Field(description="Shares made in the range.")
    reach: int | None = Field(description="Potential reach: the sharers' audience sizes at share time, summed.")
    clicks: int = Field(description="Counted (unique human) clicks.")
    clicks_by_verdict: ClicksByVerdict
    click_through: float | None = Field(description="Counted clicks per share.")
    conversions: int
    conversions_by_kind: dict[str, int]
    conversion_value: list[MoneyOut] = Field(description="Conversion value per currency.")
    conversion_rate: float | None = Field(description="Conversions per counted click.")
    amplification: float | None = Field(
        description="Reach divided by the brand's own audience (networks with a brand audience set)."
    )
    earned_media_value: list[MoneyOut] | None = Field(
        description="Counted clicks x CPC + reach / 1000 x CPM, per network, summed per currency."
    )


class NetworkMeasures(Measures):
    network: str


class EmployeeMetrics(Measures):
    employee_id: str
    audience: dict[str, int] = Field(description="Latest audience size per network.")
    by_network: list[NetworkMeasures]


class ContentMetrics(Measures):
    content_id: str
    by_network: list[NetworkMeasures]


class SummaryItem(Measures):
    key: str | None = Field(description="The group: a day or week start (YYYY-MM-DD), or a name; null when unknown.")


class Summary(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    group_by: GroupBy
    order: SummaryOrder = Field(description="The order of `items` and of the pages.")
    time_zone: str
    base_currency: str
    items: list[SummaryItem]
    totals: Measures = Field(description="The whole range, whatever the page.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page; null on the last.")


class ExcludedMoney(MoneyOut):
    what: str


class ProgrammeCost(BaseModel):
    fee: MoneyOut
    rewards: MoneyOut
    total: MoneyOut


class RoiReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    base_currency: str
    conversion_value: list[MoneyOut]
    conversion_value_in_base: MoneyOut
    earned_media_value: MoneyOut
    programme_cost: ProgrammeCost
    net_return: MoneyOut
    roi: str | None = Field(description="(value + EMV - cost) / cost, 4 decimals; null when undefined (see notes).")
    excluded: list[ExcludedMoney] = Field(description="Amounts left out of ROI for want of an exchange rate.")
    notes: list[str]


class AdoptionWeek(BaseModel):
    week_start: str
    new_sharers: int
    lapsed_sharers: int


class AdoptionPeriod(BaseModel):
    """The eligible people who shared from ``from`` (the start of ``as_of``'s week or month) to
    ``as_of``, and their share of the eligible workforce."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    sharers: int
    share_rate: float | None


class AdoptionReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    as_of: str
    enrolled: int
    eligible: int = Field(
        description="the denominator: provisioned and active people when the tenant has a directory "
        "(SCIM), the enrolled otherwise"
    )
    eligible_source: Literal["directory", "enrolled"]
    active_last_30_days: int = Field(description="eligible people who shared in the 30 days up to as_of")
    active_rate: float | None = Field(description="active_last_30_days / eligible")
    sharers_last_30_days: int
    this_week: AdoptionPeriod
    this_month: AdoptionPeriod
    weeks: list[AdoptionWeek]
