"""Metrics' own tables: raw facts (the system of record here) and the aggregates built from them.

Facts are what the events said, one row per fact id (a redelivered event inserts nothing).
Aggregates are pure functions of the facts (see :mod:`advocacy_metrics.domain`), kept in the same
transaction as the facts and recomputable from them (:mod:`advocacy_metrics.features.rebuild`):

- ``daily_stats``: day x employee x content x network x team (the fine grain);
- ``team_daily_stats`` / ``content_daily_stats``: the same counters rolled up to day x team x
  network and day x content x network, so a year-long summary reads thousands of rows, not millions;
- ``daily_conversions``: conversions and their value, fine grain x kind x currency;
- ``dimension_daily_clicks`` / ``dimension_daily_conversions``: per day x (country | device |
  referrer) value, for the click-only dimensions (shares carry none);
- ``sharer_days``, ``sharers``, ``sharer_lapses``: who shared on which day, first share, and the
  days someone passed 30 days without a share (adoption).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from advocacy_common.db import add_messaging_tables, table_of
from advocacy_common.tenant_store import TENANT_SETTINGS, add_tenant_settings_table


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)
add_tenant_settings_table(metadata)
SETTINGS = metadata.tables[TENANT_SETTINGS.name]

TS = sa.DateTime(timezone=True)
MONEY = sa.Numeric(20, 4)

VERDICT_COLUMNS = (
    "clicks_counted",
    "clicks_bot",
    "clicks_duplicate",
    "clicks_self",
    "clicks_rate_limited",
    "clicks_invalidated",
)
STAT_COLUMNS = ("shares", "reach", *VERDICT_COLUMNS)
CONVERSION_COLUMNS = ("conversions", "amount")


# -- facts ------------------------------------------------------------------------------------------
class ShareFact(Model, table=True):
    __tablename__ = "share_facts"
    __table_args__ = (sa.Index("ix_share_facts_employee", "tenant_id", "employee_id"),)

    share_id: str = Field(primary_key=True)
    tenant_id: str
    employee_id: str
    content_id: str
    network: str
    team: str = ""
    created_at: datetime = Field(sa_type=TS)
    audience_size: int = Field(default=0, sa_type=sa.BigInteger)


class ClickFact(Model, table=True):
    __tablename__ = "click_facts"
    __table_args__ = (sa.Index("ix_click_facts_employee", "tenant_id", "employee_id"),)

    click_id: str = Field(primary_key=True)
    tenant_id: str
    share_id: str
    employee_id: str
    content_id: str
    network: str
    team: str = ""
    clicked_at: datetime = Field(sa_type=TS)
    verdict: str
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    referrer_domain: str | None = None
    country: str | None = None
    # Why a bot verdict was given (issue 21; None for other verdicts and clicks judged before reasons)
    reason: str | None = None
    # A counted click an admin later judged fraudulent (click.invalidated): counted as "invalidated".
    invalidated: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class ClickInvalidation(Model, table=True):
    """Invalidations as they arrived; may precede the click they name (then applied when it lands)."""

    __tablename__ = "click_invalidations"

    click_id: str = Field(primary_key=True)
    tenant_id: str
    reason: str = ""
    invalidated_at: datetime = Field(sa_type=TS)


class ConversionFact(Model, table=True):
    __tablename__ = "conversion_facts"
    __table_args__ = (
        sa.Index("ix_conversion_facts_click", "click_id"),
        sa.Index("ix_conversion_facts_employee", "tenant_id", "employee_id"),
    )

    conversion_id: str = Field(primary_key=True)
    tenant_id: str
    click_id: str
    share_id: str
    employee_id: str
    content_id: str
    network: str
    team: str = ""
    kind: str
    # No value: amount 0 and currency "" (counted, worth nothing known).
    amount: Decimal = Field(default=Decimal(0), sa_type=MONEY)
    currency: str = ""
    occurred_at: datetime = Field(sa_type=TS)


class AccountFact(Model, table=True):
    """The latest audience size per employee and network (an older update never wins)."""

    __tablename__ = "account_facts"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)
    audience_size: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = Field(sa_type=TS)


class MemberFact(Model, table=True):
    """Membership history: enrolment as of any instant is the latest row at or before it."""

    __tablename__ = "member_facts"
    # and ix_member_facts_latest (tenant_id, employee_id, updated_at) INCLUDE (enrolled): migration 0011

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    updated_at: datetime = Field(sa_type=TS, primary_key=True)
    enrolled: bool
    programme_roles: list[str] = Field(default_factory=list, sa_type=JSONB)
    team: str = ""


class DirectoryFact(Model, table=True):
    """The company directory's records (content's member.provisioned, issue 17), kept as history:
    whether someone is in the eligible workforce as of any instant is the latest row at or before
    it. A tenant with any row has a directory (adoption's denominator is then the active people)."""

    __tablename__ = "directory_facts"
    # and ix_directory_facts_latest (tenant_id, employee_id, updated_at) INCLUDE (active): migration 0011

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    updated_at: datetime = Field(sa_type=TS, primary_key=True)
    active: bool


class RedemptionFact(Model, table=True):
    """A reward redemption and its money value (programme cost), cancelled or not."""

    __tablename__ = "redemption_facts"
    __table_args__ = (sa.Index("ix_redemption_facts_redeemed", "tenant_id", "redeemed_at"),)

    redemption_id: str = Field(primary_key=True)
    tenant_id: str
    # Emptied on erasure: the cost stays, the person goes.
    employee_id: str = ""
    amount: Decimal = Field(default=Decimal(0), sa_type=MONEY)
    currency: str = ""
    redeemed_at: datetime | None = Field(default=None, sa_type=TS)
    cancelled_at: datetime | None = Field(default=None, sa_type=TS)


class ErasedMember(Model, table=True):
    """Tombstones: events about an erased person that arrive later are dropped."""

    __tablename__ = "erased_members"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    erased_at: datetime = Field(sa_type=TS)


# -- aggregates -------------------------------------------------------------------------------------
class StatCounters(SQLModel):
    shares: int = 0
    reach: int = Field(default=0, sa_type=sa.BigInteger)
    clicks_counted: int = 0
    clicks_bot: int = 0
    clicks_duplicate: int = 0
    clicks_self: int = 0
    clicks_rate_limited: int = 0
    clicks_invalidated: int = 0


class DailyStat(StatCounters, Model, table=True):
    """One row per day x employee x content x network x team, updated with the facts."""

    __tablename__ = "daily_stats"
    __table_args__ = (sa.Index("ix_daily_stats_employee", "tenant_id", "employee_id", "day"),)

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)
    team: str = Field(primary_key=True, default="")


class TeamDailyStat(StatCounters, Model, table=True):
    __tablename__ = "team_daily_stats"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    team: str = Field(primary_key=True, default="")
    network: str = Field(primary_key=True)


class ContentDailyStat(StatCounters, Model, table=True):
    __tablename__ = "content_daily_stats"
    __table_args__ = (sa.Index("ix_content_daily_stats_content", "tenant_id", "content_id", "day"),)

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)


class NetworkDailyStat(StatCounters, Model, table=True):
    """Per day and network only: day, week and network summaries read a few rows a day."""

    __tablename__ = "network_daily_stats"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    network: str = Field(primary_key=True)


class TeamMonthlyStat(StatCounters, Model, table=True):
    """Per month: the whole months of a long range come from here, its edge days from the daily table."""

    __tablename__ = "team_monthly_stats"

    tenant_id: str = Field(primary_key=True)
    month: date = Field(primary_key=True)
    team: str = Field(primary_key=True, default="")
    network: str = Field(primary_key=True)


class ContentMonthlyStat(StatCounters, Model, table=True):
    __tablename__ = "content_monthly_stats"
    # and ix_content_monthly_stats_pages (tenant_id, content_id COLLATE "C", network, month): migration 0006
    __table_args__ = (sa.Index("ix_content_monthly_stats_content", "tenant_id", "content_id", "month"),)

    tenant_id: str = Field(primary_key=True)
    month: date = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)


class EmployeeMonthlyStat(StatCounters, Model, table=True):
    __tablename__ = "employee_monthly_stats"
    # and ix_employee_monthly_stats_pages (tenant_id, employee_id COLLATE "C", network, month): migration 0006
    __table_args__ = (sa.Index("ix_employee_monthly_stats_employee", "tenant_id", "employee_id", "month"),)

    tenant_id: str = Field(primary_key=True)
    month: date = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)


class ConversionSums(SQLModel):
    conversions: int = 0
    amount: Decimal = Field(default=Decimal(0), sa_type=MONEY)


class NetworkDailyConversion(ConversionSums, Model, table=True):
    __tablename__ = "network_daily_conversions"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    network: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    currency: str = Field(primary_key=True, default="")


class TeamMonthlyConversion(ConversionSums, Model, table=True):
    __tablename__ = "team_monthly_conversions"

    tenant_id: str = Field(primary_key=True)
    month: date = Field(primary_key=True)
    team: str = Field(primary_key=True, default="")
    network: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    currency: str = Field(primary_key=True, default="")


class ContentMonthlyConversion(ConversionSums, Model, table=True):
    __tablename__ = "content_monthly_conversions"
    # and ix_content_monthly_conversions_pages (tenant_id, content_id COLLATE "C", month): migration 0012
    __table_args__ = (sa.Index("ix_content_monthly_conversions_content", "tenant_id", "content_id", "month"),)

    tenant_id: str = Field(primary_key=True)
    month: date = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    currency: str = Field(primary_key=True, default="")


class DailyConversion(Model, table=True):
    __tablename__ = "daily_conversions"
    # and ix_daily_conversions_{employee,content}_pages (tenant_id, key COLLATE "C", day): migration 0012
    __table_args__ = (
        sa.Index("ix_daily_conversions_employee", "tenant_id", "employee_id", "day"),
        sa.Index("ix_daily_conversions_content", "tenant_id", "content_id", "day"),
    )

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)
    team: str = Field(primary_key=True, default="")
    kind: str = Field(primary_key=True)
    currency: str = Field(primary_key=True, default="")
    conversions: int = 0
    amount: Decimal = Field(default=Decimal(0), sa_type=MONEY)


class DimensionDailyClicks(Model, table=True):
    """Clicks by verdict per day and value of one click dimension (country, device, referrer)."""

    __tablename__ = "dimension_daily_clicks"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    dimension: str = Field(primary_key=True)
    value: str = Field(primary_key=True, default="")
    clicks_counted: int = 0
    clicks_bot: int = 0
    clicks_duplicate: int = 0
    clicks_self: int = 0
    clicks_rate_limited: int = 0
    clicks_invalidated: int = 0


class DimensionDailyConversions(Model, table=True):
    """Conversions attributed to a click, by that click's dimension value (once both are known)."""

    __tablename__ = "dimension_daily_conversions"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    dimension: str = Field(primary_key=True)
    value: str = Field(primary_key=True, default="")
    kind: str = Field(primary_key=True)
    currency: str = Field(primary_key=True, default="")
    conversions: int = 0
    amount: Decimal = Field(default=Decimal(0), sa_type=MONEY)


class SharerDay(Model, table=True):
    __tablename__ = "sharer_days"
    __table_args__ = (sa.Index("ix_sharer_days_day", "tenant_id", "day"),)

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)


class Sharer(Model, table=True):
    __tablename__ = "sharers"
    __table_args__ = (sa.Index("ix_sharers_first_day", "tenant_id", "first_day"),)

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    first_day: date


class SharerLapse(Model, table=True):
    """A day on which a sharer had gone 30 days without sharing (may lie in the future)."""

    __tablename__ = "sharer_lapses"
    __table_args__ = (sa.Index("ix_sharer_lapses_day", "tenant_id", "day"),)

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)


class AdoptionDay(Model, table=True):
    """Per day: how many sharers shared for the first time, and how many lapsed (from the two above)."""

    __tablename__ = "adoption_days"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    new_sharers: int = 0
    lapsed_sharers: int = 0


class AdoptionStep(Model, table=True):
    """Per day, the net change of each adoption count (``domain.adoption.STEP_COLUMNS``): a count on
    ``as_of`` is the sum of the tenant's rows up to it. Kept by the consumer, the rebuild and the
    erasure; a row exists only while a counter is non-zero (migration 0013)."""

    __tablename__ = "adoption_steps"

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    enrolled: int = 0
    in_directory: int = 0
    active: int = 0
    active_enrolled: int = 0
    active_in_directory: int = 0
    week_enrolled: int = 0
    week_in_directory: int = 0
    month_enrolled: int = 0
    month_in_directory: int = 0


class AggregateBackfill(Model, table=True):
    """A tenant's aggregate not filled yet (after the migration that added it): its reads take the
    old path until ``advocacy metrics backfill`` has filled it and deleted this marker."""

    __tablename__ = "aggregate_backfills"

    tenant_id: str = Field(primary_key=True)
    aggregate: str = Field(primary_key=True)


#: ``bucket`` = floor(log2(clicks_counted)), exact in integers. STORED: PostgreSQL 18 makes generated
#: columns virtual by default, and a virtual column cannot be indexed.
RANKING_BUCKET_SQL = "(length(ltrim(clicks_counted::bit(64)::text, '0')) - 1)::smallint"


class RankingClicksMonthly(Model, table=True):
    """Counted clicks per month of each employee and each content (``group_by``), summed over
    networks: the narrow list the ranking by clicks reads candidates from, highest ``bucket`` first
    (``ix_ranking_clicks_monthly_top``, migration 0014). A row is never at 0 (it is deleted). Only
    the index's ``bucket`` changes, when the count crosses a power of two: updates stay HOT."""

    __tablename__ = "ranking_clicks_monthly"

    tenant_id: str = Field(primary_key=True)
    group_by: str = Field(primary_key=True)  # "employee" | "content"
    month: date = Field(primary_key=True)
    key: str = Field(primary_key=True)  # employee_id | content_id
    clicks_counted: int = Field(default=0, sa_type=sa.BigInteger)
    bucket: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.SmallInteger, sa.Computed(RANKING_BUCKET_SQL, persisted=True)),
    )


#: ``ranking_clicks_yearly.bucket``: an eighth of an octave, ``domain.yearly_bucket`` in SQL (exact in
#: integers: 8 x floor(log2 clicks) + the three bits after the leading one).
YEARLY_BUCKET_SQL = (
    "(8 * (length(ltrim(clicks_counted::bit(64)::text, '0')) - 1) "
    "+ ((clicks_counted << 3) >> (length(ltrim(clicks_counted::bit(64)::text, '0')) - 1)) - 8)::smallint"
)


class RankingClicksYearly(Model, table=True):
    """Counted clicks per calendar year of each employee and each content, summed over networks:
    a page of a year's ranking by clicks reads the rows from the cursor's ``bucket`` down
    (``ix_ranking_clicks_yearly_order``, migrations 0015 and 0016). Every group present in a year (a
    stats or conversion roll-up row in it) has a row, at 0 when it has no counted click (0016): the
    ranking's tail, in key order. Only the index's ``bucket`` changes, when the count crosses an
    eighth of an octave: updates stay HOT otherwise."""

    __tablename__ = "ranking_clicks_yearly"

    tenant_id: str = Field(primary_key=True)
    group_by: str = Field(primary_key=True)  # "employee" | "content"
    year: int = Field(primary_key=True, sa_type=sa.SmallInteger)
    key: str = Field(primary_key=True)  # employee_id | content_id
    clicks_counted: int = Field(default=0, sa_type=sa.BigInteger)
    bucket: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.SmallInteger, sa.Computed(YEARLY_BUCKET_SQL, persisted=True)),
    )


class WeeklyReport(Model, table=True):
    """A tenant's weekly programme report, once composed (its event went to the outbox in the same
    transaction): the primary key makes it one per tenant and week, whatever the passes or workers."""

    __tablename__ = "weekly_reports"

    tenant_id: str = Field(primary_key=True)
    week_start: date = Field(primary_key=True)
    report_id: str
    composed_at: datetime = Field(sa_type=TS)


DAILY_STATS = table_of(DailyStat)
TEAM_DAILY_STATS = table_of(TeamDailyStat)
CONTENT_DAILY_STATS = table_of(ContentDailyStat)
DAILY_CONVERSIONS = table_of(DailyConversion)
DIMENSION_DAILY_CLICKS = table_of(DimensionDailyClicks)
DIMENSION_DAILY_CONVERSIONS = table_of(DimensionDailyConversions)
SHARER_DAYS = table_of(SharerDay)
SHARERS = table_of(Sharer)
SHARER_LAPSES = table_of(SharerLapse)
ADOPTION_DAYS = table_of(AdoptionDay)
ADOPTION_STEPS = table_of(AdoptionStep)
AGGREGATE_BACKFILLS = table_of(AggregateBackfill)
WEEKLY_REPORTS = table_of(WeeklyReport)
RANKING_CLICKS_MONTHLY = table_of(RankingClicksMonthly)
RANKING_CLICKS_YEARLY = table_of(RankingClicksYearly)
SHARE_FACTS = table_of(ShareFact)
CLICK_FACTS = table_of(ClickFact)
CLICK_INVALIDATIONS = table_of(ClickInvalidation)
CONVERSION_FACTS = table_of(ConversionFact)
ACCOUNT_FACTS = table_of(AccountFact)
MEMBER_FACTS = table_of(MemberFact)
DIRECTORY_FACTS = table_of(DirectoryFact)
REDEMPTION_FACTS = table_of(RedemptionFact)
ERASED_MEMBERS = table_of(ErasedMember)

NETWORK_DAILY_STATS = table_of(NetworkDailyStat)
TEAM_MONTHLY_STATS = table_of(TeamMonthlyStat)
CONTENT_MONTHLY_STATS = table_of(ContentMonthlyStat)
EMPLOYEE_MONTHLY_STATS = table_of(EmployeeMonthlyStat)
NETWORK_DAILY_CONVERSIONS = table_of(NetworkDailyConversion)
TEAM_MONTHLY_CONVERSIONS = table_of(TeamMonthlyConversion)
CONTENT_MONTHLY_CONVERSIONS = table_of(ContentMonthlyConversion)


@dataclass(frozen=True)
class Rollup:
    """An aggregate table: the fine stats (or conversions) summed to (tenant, day | month, *columns)."""

    table: sa.Table
    columns: tuple[str, ...]
    monthly: bool = False

    @property
    def period(self) -> str:
        return "month" if self.monthly else "day"

    @property
    def keys(self) -> tuple[str, ...]:
        return ("tenant_id", self.period, *self.columns)


FINE = ("employee_id", "content_id", "network", "team")
#: Stats roll-ups, finest first. Reads take the smallest one holding the columns they need.
STAT_ROLLUPS = (
    Rollup(DAILY_STATS, FINE),
    Rollup(TEAM_DAILY_STATS, ("team", "network")),
    Rollup(CONTENT_DAILY_STATS, ("content_id", "network")),
    Rollup(NETWORK_DAILY_STATS, ("network",)),
    Rollup(TEAM_MONTHLY_STATS, ("team", "network"), monthly=True),
    Rollup(CONTENT_MONTHLY_STATS, ("content_id", "network"), monthly=True),
    Rollup(EMPLOYEE_MONTHLY_STATS, ("employee_id", "network"), monthly=True),
)
#: Conversion roll-ups (their keys end with kind and currency).
CONVERSION_ROLLUPS = (
    Rollup(DAILY_CONVERSIONS, FINE),
    Rollup(NETWORK_DAILY_CONVERSIONS, ("network",)),
    Rollup(TEAM_MONTHLY_CONVERSIONS, ("team", "network"), monthly=True),
    Rollup(CONTENT_MONTHLY_CONVERSIONS, ("content_id", "network"), monthly=True),
)

#: Every table derived from the facts (what a rebuild deletes and recomputes).
AGGREGATE_TABLES = (
    *(r.table for r in STAT_ROLLUPS),
    *(r.table for r in CONVERSION_ROLLUPS),
    DIMENSION_DAILY_CLICKS,
    DIMENSION_DAILY_CONVERSIONS,
    SHARER_DAYS,
    SHARERS,
    SHARER_LAPSES,
    ADOPTION_DAYS,
    ADOPTION_STEPS,
    RANKING_CLICKS_MONTHLY,
    RANKING_CLICKS_YEARLY,
)
