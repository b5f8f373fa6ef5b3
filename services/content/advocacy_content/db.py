"""Content's tables and queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel

from advocacy_common.db import add_messaging_tables


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)


class ContentItem(Model, table=True):
    __tablename__ = "content_items"
    __table_args__ = (
        sa.Index("ix_content_tenant_status", "tenant_id", "status", "published_at"),
        sa.Index("ix_content_search", "search", postgresql_using="gin"),
        sa.Index("ix_content_tags", "tags", postgresql_using="gin"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str = Field(index=False)
    title: str
    url: str
    slug: str
    body: str | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(sa.Text), nullable=False))
    captions: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    status: str
    publish_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    created_by: str
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    search: str | None = Field(
        default=None,
        sa_column=Column(
            TSVECTOR,
            sa.Computed(
                "to_tsvector('simple'::regconfig, coalesce(title,'') || ' ' || coalesce(body,''))",
                persisted=True,
            ),
        ),
    )
