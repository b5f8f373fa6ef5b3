"""Gamification's tables: members it knows, the append-only ledger, and per-window totals."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from advocacy_common.db import add_messaging_tables


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)

TS = sa.DateTime(timezone=True)


class Member(Model, table=True):
    __tablename__ = "members"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    name: str | None = None
    team: str | None = None
    visibility: str = "ranked"
    updated_at: datetime = Field(sa_type=TS)


class LedgerEntry(Model, table=True):
    """One award or reversal; never updated. Unique per (event, rule version)."""

    __tablename__ = "ledger"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "event_id", "rule_version", name="uq_ledger_event_rule"),
        sa.Index("ix_ledger_employee", "tenant_id", "employee_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    tenant_id: str
    employee_id: str
    event_id: str
    rule_version: int
    action: str
    points: int
    occurred_at: datetime = Field(sa_type=TS)
    created_at: datetime = Field(sa_type=TS, sa_column_kwargs={"server_default": sa.func.now()})


class PointsTotal(Model, table=True):
    """Materialised leaderboard: points per employee per window (all / week / month)."""

    __tablename__ = "points_totals"
    __table_args__ = (
        sa.Index("ix_points_rank", "tenant_id", "window", "window_start", sa.text("points DESC"), "employee_id"),
    )

    tenant_id: str = Field(primary_key=True)
    window: str = Field(primary_key=True)
    window_start: date = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    team: str | None = None
    points: int = 0
