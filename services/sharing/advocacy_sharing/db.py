"""Sharing's tables: its copy of published content, shares (tracked links) and clicks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from advocacy_common.db import add_messaging_tables


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)

TS = sa.DateTime(timezone=True)


class ContentCopy(Model, table=True):
    """What sharing knows of published content, built from content's events."""

    __tablename__ = "content_copies"

    tenant_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    title: str
    url: str
    slug: str
    status: str
    expires_at: datetime | None = Field(default=None, sa_type=TS)
    updated_at: datetime = Field(sa_type=TS)


class Share(Model, table=True):
    __tablename__ = "shares"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "employee_id", "content_id", "network", name="uq_share_per_network"),
        sa.Index("ix_shares_tenant_created", "tenant_id", "created_at"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    code: str = Field(unique=True)
    employee_id: str | None
    employee_name: str | None = None
    team: str | None = None
    content_id: str
    network: str
    message: str | None = None
    created_at: datetime = Field(sa_type=TS)


class Click(Model, table=True):
    """Every request on /r/{code}, with its verdict: the click journal."""

    __tablename__ = "clicks"
    __table_args__ = (
        sa.Index("ix_clicks_code_visitor", "code", "visitor", "received_at"),
        sa.Index("ix_clicks_tenant_received", "tenant_id", "received_at"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    code: str
    share_id: str
    employee_id: str | None
    content_id: str
    network: str
    received_at: datetime = Field(sa_type=TS)
    visitor: str
    verdict: str
    user_agent: str = ""
    referrer_domain: str | None = None
    country: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
