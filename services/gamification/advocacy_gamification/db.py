"""Gamification's tables.

The ledger is the record: every figure elsewhere (window totals, balances, challenge totals) is a
sum of ledger rows, moved only by increments written in the transaction that appends the rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from advocacy_common.audit import add_audit_table
from advocacy_common.db import add_messaging_tables, table_of
from advocacy_common.tenant_store import add_tenant_settings_table


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)
add_audit_table(metadata)
add_tenant_settings_table(metadata)

TS = sa.DateTime(timezone=True)


class Member(Model, table=True):
    """What gamification knows of a person: from membership events and their shares."""

    __tablename__ = "members"
    # The deactivated, found for each consumed batch (awards score them 0): few rows, a small index.
    __table_args__ = (
        sa.Index("ix_members_inactive", "tenant_id", "employee_id", postgresql_where=sa.text("NOT active")),
    )

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    name: str | None = None
    team: str | None = None
    visibility: str = "ranked"  # ranked | anonymous | hidden
    enrolled: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # updated_at of the last membership event applied (an older one never overwrites a newer one)
    membership_at: datetime | None = Field(default=None, sa_type=TS)
    updated_at: datetime = Field(sa_type=TS)
    # The company directory's flag (member.provisioned, issue 17): an inactive person is on no board
    # and earns nothing. True for people the directory does not list.
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # updated_at of the last directory record applied (an older one never overwrites a newer one)
    directory_at: datetime | None = Field(default=None, sa_type=TS)


class TeamSize(Model, table=True):
    """A directory team's size in active provisioned members (team.updated, issue 17): the divisor of
    the per-capita team board. A deleted team keeps its row (``deleted``) so a late, older update
    cannot bring it back."""

    __tablename__ = "team_sizes"

    tenant_id: str = Field(primary_key=True)
    team: str = Field(primary_key=True)
    size: int
    deleted: bool = False
    updated_at: datetime = Field(sa_type=TS)


class LedgerEntry(Model, table=True):
    """One award, reversal, redemption or refund; never updated (except pseudonymised on erasure).

    ``points`` moves the leaderboard, ``balance_delta`` the spendable balance. Unique per
    (event, rule version); a reversal names the entry it reverses, and an entry is reversed once.
    """

    __tablename__ = "ledger"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "event_id", "rule_version", name="uq_ledger_event_rule"),
        sa.Index("ix_ledger_employee", "tenant_id", "employee_id", "id"),
        sa.Index("uq_ledger_reverses", "reverses_id", unique=True, postgresql_where=sa.text("reverses_id IS NOT NULL")),
        sa.Index("ix_ledger_occurred", "tenant_id", "occurred_at"),
    )

    id: int | None = Field(
        default=None, sa_column_kwargs={"autoincrement": True}, sa_type=sa.BigInteger, primary_key=True
    )
    tenant_id: str
    employee_id: str
    event_id: str
    rule_version: int
    entry_type: str = Field(default="award", sa_column_kwargs={"server_default": "award"})
    action: str
    detail: str | None = None  # conversion kind
    ref: str | None = None  # the domain id behind the event (share, click, conversion, redemption)
    content_id: str | None = None
    points: int
    balance_delta: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    capped: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    reverses_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    reason: str | None = None
    occurred_at: datetime = Field(sa_type=TS)
    created_at: datetime = Field(sa_type=TS, sa_column_kwargs={"server_default": sa.func.now()})


#: ``points_totals.bucket``: :func:`advocacy_gamification.domain.points_bucket` in SQL, exact in integers
#: (the signed bit length of the points). STORED: PostgreSQL 18 makes generated columns virtual by
#: default, and a virtual column cannot be indexed.
POINTS_BUCKET_SQL = (
    "((CASE WHEN points < 0 THEN -1 ELSE 1 END) * length(ltrim(abs(points::bigint)::bit(64)::text, '0')))::smallint"
)


class PointsTotal(Model, table=True):
    """Materialised leaderboard: points per employee per window (all / week / month, tenant calendar).

    ``ranked`` (enrolled and not hidden) and ``team`` are copied from the member so a board and a
    rank are one index range each. The rank indexes hold ``bucket`` (the points' octave), not the
    points: an update of the points is HOT (no index entry, docs/adr/0032-board-ranks-by-points-bucket.md)
    unless it crosses a power of two, and a board's page reads its rows bucket by bucket, sorting
    each by points (migration 0012, which also sets fillfactor 70: room on each page for the new
    versions).
    """

    __tablename__ = "points_totals"
    __table_args__ = (
        sa.Index(
            "ix_points_bucket",
            "tenant_id",
            "window",
            "window_start",
            sa.text("bucket DESC"),
            postgresql_where=sa.text("ranked"),
        ),
        sa.Index(
            "ix_points_team_bucket",
            "tenant_id",
            "window",
            "window_start",
            "team",
            sa.text("bucket DESC"),
            postgresql_where=sa.text("ranked"),
        ),
    )

    tenant_id: str = Field(primary_key=True)
    window: str = Field(primary_key=True)
    window_start: date = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    team: str | None = None
    points: int = 0
    ranked: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    bucket: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.SmallInteger, sa.Computed(POINTS_BUCKET_SQL, persisted=True)),
    )


class Board(Model, table=True):
    """Every (tenant, window, first day) that has ``points_totals`` rows: a person's rows are then one
    primary-key probe per board (membership changes, erasure), without an index on
    ``points_totals (tenant_id, employee_id)`` (an entry per window per new person, on the hot path;
    PostgreSQL 17, production's, has no skip scan). Listed by the code that writes the totals
    (``ledger.post``, ``ledger.rebuild_windows``), a few rows per batch, ignored when already there."""

    __tablename__ = "boards"

    tenant_id: str = Field(primary_key=True)
    window: str = Field(primary_key=True)
    window_start: date = Field(primary_key=True)


class ScoreCount(Model, table=True):
    """How many ranked people have each score on a board: a rank is 1 + the counts above a score,
    a sum over the distinct scores (hundreds) instead of a count over the people (100,000).
    Moved with ``points_totals``, in the same transaction, by the same code."""

    __tablename__ = "score_counts"

    tenant_id: str = Field(primary_key=True)
    window: str = Field(primary_key=True)
    window_start: date = Field(primary_key=True)
    points: int = Field(primary_key=True)
    count: int = 0


class Balance(Model, table=True):
    """Spendable points: the sum of the employee's ledger ``balance_delta``; never below zero."""

    __tablename__ = "balances"
    __table_args__ = (sa.CheckConstraint("balance >= 0", name="ck_balance_not_negative"),)

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    balance: int = 0


class RuleSet(Model, table=True):
    __tablename__ = "rule_sets"

    tenant_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    effective_at: datetime = Field(sa_type=TS)
    body: dict[str, Any] = Field(sa_type=JSONB)
    created_by: str
    created_at: datetime = Field(sa_type=TS, sa_column_kwargs={"server_default": sa.func.now()})


class DailyCount(Model, table=True):
    """Awards per employee, action and tenant day (for daily caps; only kept while a cap is set)."""

    __tablename__ = "daily_counts"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    action: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    count: int = 0


class MemberStats(Model, table=True):
    """Counts behind the badges."""

    __tablename__ = "member_stats"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    shares: int = 0
    clicks: int = 0
    conversions: int = 0
    streak_weeks: int = 0
    last_share_week: date | None = None


class BadgeEarned(Model, table=True):
    __tablename__ = "badges_earned"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    badge: str = Field(primary_key=True)
    earned_at: datetime = Field(sa_type=TS)


class Erasure(Model, table=True):
    """People erased: events about them that arrive later are ignored. Keyed by a hash of the id."""

    __tablename__ = "erasures"

    tenant_id: str = Field(primary_key=True)
    employee_hash: str = Field(primary_key=True)
    erased_at: datetime = Field(sa_type=TS)


class Challenge(Model, table=True):
    __tablename__ = "challenges"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ck_challenge_period"),
        sa.Index("ix_challenges_tenant", "tenant_id", sa.text("starts_at DESC"), "id"),
        sa.Index("ix_challenges_open", "ends_at", postgresql_where=sa.text("finalised_at IS NULL")),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    name: str
    starts_at: datetime = Field(sa_type=TS)
    ends_at: datetime = Field(sa_type=TS)
    goal_kind: str
    goal_value: int
    content_ids: list[str] | None = Field(default=None, sa_type=JSONB)
    created_by: str
    created_at: datetime = Field(sa_type=TS, sa_column_kwargs={"server_default": sa.func.now()})
    finalised_at: datetime | None = Field(default=None, sa_type=TS)


class ChallengeTotal(Model, table=True):
    __tablename__ = "challenge_totals"
    __table_args__ = (
        sa.Index(
            "ix_challenge_rank",
            "challenge_id",
            sa.text("points DESC"),
            "employee_id",
            postgresql_where=sa.text("ranked"),
        ),
        sa.Index("ix_challenge_totals_employee", "tenant_id", "employee_id"),
    )

    challenge_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    tenant_id: str
    team: str | None = None
    points: int = 0
    ranked: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})


class ChallengeWinner(Model, table=True):
    """Fixed once, when the challenge is finalised."""

    __tablename__ = "challenge_winners"

    challenge_id: str = Field(primary_key=True)
    position: int = Field(primary_key=True)
    tenant_id: str
    employee_id: str | None = None
    team: str | None = None
    points: int
    rank: int


class Reward(Model, table=True):
    __tablename__ = "rewards"
    __table_args__ = (
        sa.CheckConstraint("stock >= 0", name="ck_reward_stock"),
        sa.CheckConstraint("cost_points > 0", name="ck_reward_cost"),
        sa.Index("ix_rewards_tenant", "tenant_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    name: str
    description: str | None = None
    cost_points: int
    stock: int
    value: dict[str, Any] | None = Field(default=None, sa_type=JSONB)  # Money
    created_by: str
    created_at: datetime = Field(sa_type=TS, sa_column_kwargs={"server_default": sa.func.now()})


class Redemption(Model, table=True):
    __tablename__ = "redemptions"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "employee_id", "idempotency_key", name="uq_redemption_key"),
        sa.Index("ix_redemptions_tenant", "tenant_id", "created_at", "id"),
        sa.Index("ix_redemptions_employee", "tenant_id", "employee_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    employee_id: str
    reward_id: str
    idempotency_key: str
    cost_points: int
    value: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    status: str = "pending"  # pending | fulfilled | cancelled
    created_at: datetime = Field(sa_type=TS)
    fulfilled_at: datetime | None = Field(default=None, sa_type=TS)
    cancelled_at: datetime | None = Field(default=None, sa_type=TS)
    cancel_reason: str | None = None


class ServiceSecret(Model, table=True):
    """Secrets every replica must share and nobody configured (e.g. the stream-ticket key)."""

    __tablename__ = "service_secrets"

    name: str = Field(primary_key=True)
    value: str


class StreamTicketUse(Model, table=True):
    """Stream tickets already used (a ticket opens one stream, on any replica), kept until expiry."""

    __tablename__ = "stream_ticket_uses"

    nonce: str = Field(primary_key=True)
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


MEMBERS = table_of(Member)
TEAM_SIZES = table_of(TeamSize)
LEDGER = table_of(LedgerEntry)
TOTALS = table_of(PointsTotal)
BOARDS = table_of(Board)
BALANCES = table_of(Balance)
SCORE_COUNTS = table_of(ScoreCount)
RULE_SETS = table_of(RuleSet)
DAILY_COUNTS = table_of(DailyCount)
STATS = table_of(MemberStats)
BADGES = table_of(BadgeEarned)
ERASURES = table_of(Erasure)
CHALLENGES = table_of(Challenge)
CHALLENGE_TOTALS = table_of(ChallengeTotal)
CHALLENGE_WINNERS = table_of(ChallengeWinner)
REWARDS = table_of(Reward)
REDEMPTIONS = table_of(Redemption)
SECRETS = table_of(ServiceSecret)
