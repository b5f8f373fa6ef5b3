"""Metrics' own tables: raw facts (the system of record here) and daily aggregates built from them."""

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


class ShareFact(Model, table=True):
    __tablename__ = "share_facts"

    share_id: str = Field(primary_key=True)
    tenant_id: str
    employee_id: str
    content_id: str
    network: str
    team: str = ""
    created_at: datetime = Field(sa_type=TS)
    audience_size: int = 0


class ClickFact(Model, table=True):
    __tablename__ = "click_facts"

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


class DailyStat(Model, table=True):
    """One row per day x employee x content x network x team, updated with the facts."""

    __tablename__ = "daily_stats"
    __table_args__ = (sa.Index("ix_daily_stats_employee", "tenant_id", "employee_id", "day"),)

    tenant_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)
    team: str = Field(primary_key=True, default="")
    shares: int = 0
    reach: int = 0
    clicks_counted: int = 0
    clicks_bot: int = 0
    clicks_duplicate: int = 0
    clicks_self: int = 0
    clicks_rate_limited: int = 0
    clicks_invalidated: int = 0


STAT_COLUMNS = (
    "shares",
    "reach",
    "clicks_counted",
    "clicks_bot",
    "clicks_duplicate",
    "clicks_self",
    "clicks_rate_limited",
    "clicks_invalidated",
)
