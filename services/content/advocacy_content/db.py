"""Content's tables. Every row carries ``tenant_id``; every query filters on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel

from advocacy_common.audit import add_audit_table
from advocacy_common.db import add_messaging_tables
from advocacy_common.partner_feed import WEBHOOK_DELIVERIES, add_partner_feed_tables
from advocacy_common.tenant_store import TENANT_SETTINGS, add_tenant_settings_table
from advocacy_common.tombstones import add_tombstone_tables


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)
add_audit_table(metadata)
# Content owns tenant settings: this is the system of record the settings events are built from.
add_tenant_settings_table(metadata)
TenantSettingsTable = metadata.tables[TENANT_SETTINGS.name]
# The partner feed runs in content's worker (content owns the webhook URL in tenant settings).
add_partner_feed_tables(metadata)
WebhookDeliveries = metadata.tables[WEBHOOK_DELIVERIES.name]
# Erasure tombstones (keyed): the partner feed drops events about erased people.
add_tombstone_tables(metadata)
WebhookSecrets = sa.Table(
    "webhook_secrets",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rotated_by", sa.Text, nullable=False),
)

TS = sa.DateTime(timezone=True)


def _text_array() -> Any:
    return Column(ARRAY(sa.Text), nullable=False, server_default="{}")


class ContentItem(Model, table=True):
    """A piece of content on the board, or an employee's suggestion (``proposer_id`` set)."""

    __tablename__ = "content_items"
    __table_args__ = (
        sa.Index("ix_content_tenant_status", "tenant_id", "status", "published_at"),
        sa.Index("ix_content_search", "search", postgresql_using="gin"),
        sa.Index("ix_content_tags", "tags", postgresql_using="gin"),
        # what the scheduler looks for, cheaply, several times a second
        sa.Index("ix_content_due_publish", "publish_at", postgresql_where=sa.text("status = 'scheduled'")),
        sa.Index(
            "ix_content_due_expiry",
            "expires_at",
            postgresql_where=sa.text("status IN ('published', 'scheduled') AND expires_at IS NOT NULL"),
        ),
        sa.Index(
            "ix_content_proposer", "tenant_id", "proposer_id", postgresql_where=sa.text("proposer_id IS NOT NULL")
        ),
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
    publish_at: datetime | None = Field(default=None, sa_type=TS)
    expires_at: datetime | None = Field(default=None, sa_type=TS)
    published_at: datetime | None = Field(default=None, sa_type=TS)
    created_by: str
    created_at: datetime = Field(sa_type=TS)
    updated_at: datetime = Field(sa_type=TS)
    # suggestions: who proposed it (unlinked on erasure), the review and its outcome
    proposer_id: str | None = None
    note: str | None = None
    approvals: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    reviewed_by: str | None = None
    reviewed_at: datetime | None = Field(default=None, sa_type=TS)
    rejection_reason: str | None = None
    expired_at: datetime | None = Field(default=None, sa_type=TS)
    archived_at: datetime | None = Field(default=None, sa_type=TS)
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


class Member(Model, table=True):
    """An employee's programme membership and followed topics (no row: the defaults)."""

    __tablename__ = "members"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    enrolled: bool = True
    programme_roles: list[str] = Field(default_factory=list, sa_column=_text_array())
    leaderboard: str = "ranked"
    topics: list[str] = Field(default_factory=list, sa_column=_text_array())
    name: str | None = None
    team: str | None = None
    updated_at: datetime = Field(sa_type=TS)


class SharedContent(Model, table=True):
    """Who shared what, from sharing's ``share.created`` events: the board puts unshared items first."""

    __tablename__ = "shared_content"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    first_shared_at: datetime = Field(sa_type=TS)


class PolicyVersion(Model, table=True):
    """Every version of a tenant's policy: the newest is in force. Who, when and what changed."""

    __tablename__ = "policy_versions"

    tenant_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    guidelines: str = ""
    blocked_terms: list[str] = Field(default_factory=list, sa_column=_text_array())
    required_disclosures: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    allowed_domains: list[str] = Field(default_factory=list, sa_column=_text_array())
    max_lengths: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    updated_by: str
    updated_at: datetime = Field(sa_type=TS)


class Wave(Model, table=True):
    """A step of the roll-out: a named set of teams and/or employees with a start date."""

    __tablename__ = "waves"
    __table_args__ = (sa.Index("ix_waves_tenant_starts", "tenant_id", "starts_at"),)

    id: str = Field(primary_key=True)
    tenant_id: str
    name: str
    starts_at: datetime = Field(sa_type=TS)
    teams: list[str] = Field(default_factory=list, sa_column=_text_array())
    employees: list[str] = Field(default_factory=list, sa_column=_text_array())
    created_by: str
    created_at: datetime = Field(sa_type=TS)
    updated_at: datetime = Field(sa_type=TS)


class CoachingRequest(Model, table=True):
    """A private thread: an employee's draft and question, answered by coaches."""

    __tablename__ = "coaching_requests"
    __table_args__ = (
        sa.Index("ix_coaching_tenant_status", "tenant_id", "status", "created_at"),
        sa.Index("ix_coaching_requester", "tenant_id", "requester_id", "created_at"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    requester_id: str
    network: str
    draft: str
    question: str
    status: str = "open"
    created_at: datetime = Field(sa_type=TS)
    updated_at: datetime = Field(sa_type=TS)
    closed_at: datetime | None = Field(default=None, sa_type=TS)


class CoachingReply(Model, table=True):
    __tablename__ = "coaching_replies"
    __table_args__ = (sa.Index("ix_coaching_replies_request", "request_id", "created_at"),)

    id: str = Field(primary_key=True)
    tenant_id: str
    request_id: str = Field(
        sa_column=Column(sa.Text, sa.ForeignKey("coaching_requests.id", ondelete="CASCADE"), nullable=False)
    )
    author_id: str | None  # None once the author is erased
    author_role: str  # requester | coach
    text: str
    created_at: datetime = Field(sa_type=TS)


# -- the directory (SCIM 2.0 provisioning, issue 17; docs/adr/0012-directory-in-content.md) -------------
# Each resource is kept whole as the SCIM document the service answers with (``resource``), beside the
# columns that filters, uniqueness, teams and events read. ``*_key`` columns hold the comparison form
# (NFC, lower case: userName and a group's displayName are not case-exact).
ScimSecrets = sa.Table(
    "scim_secrets",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    # SHA-256 of the bearer secret (256 random bits): the secret itself is shown once, never stored
    sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
    sa.Column("rotated_at", TS, nullable=False),
    sa.Column("rotated_by", sa.Text, nullable=False),
)
ScimUsers = sa.Table(
    "scim_users",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("employee_id", sa.Text, nullable=False),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("user_name_key", sa.Text, nullable=False),
    sa.Column("external_id", sa.Text),
    sa.Column("emails", ARRAY(sa.Text), nullable=False, server_default="{}"),  # comparison keys
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("team", sa.Text),
    sa.Column("department", sa.Text),
    sa.Column("location", sa.Text),
    sa.Column("manager", sa.Text),  # the manager's SCIM id
    sa.Column("employee_number", sa.Text),
    sa.Column("resource", JSONB, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # when active last went false (None while active): erase_inactive_after_days counts from it
    sa.Column("deactivated_at", TS),
    # set when the employee id was erased before this user was provisioned (an erased account
    # restored): the tombstone stays, so they count in no team and the board refuses them
    sa.Column("erased_at", TS),
    sa.UniqueConstraint("tenant_id", "user_name_key", name="uq_scim_users_user_name"),
    sa.UniqueConstraint("tenant_id", "employee_id", name="uq_scim_users_employee"),
    sa.Index("ix_scim_users_external_id", "tenant_id", "external_id"),
    sa.Index("ix_scim_users_emails", "emails", postgresql_using="gin"),
    sa.Index("ix_scim_users_team", "tenant_id", "team"),
    sa.Index("ix_scim_users_listing", "tenant_id", "created_at", "id"),
    sa.Index("ix_scim_users_deactivated", "deactivated_at", postgresql_where=sa.text("NOT active")),
)
ScimGroups = sa.Table(
    "scim_groups",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("display_name_key", sa.Text, nullable=False),
    sa.Column("external_id", sa.Text),
    sa.Column("resource", JSONB, nullable=False),  # without members (they are scim_group_members)
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("tenant_id", "display_name_key", name="uq_scim_groups_display_name"),
    sa.Index("ix_scim_groups_external_id", "tenant_id", "external_id"),
    sa.Index("ix_scim_groups_listing", "tenant_id", "created_at", "id"),
)
ScimGroupMembers = sa.Table(
    "scim_group_members",
    metadata,
    sa.Column("tenant_id", sa.Text, primary_key=True),
    sa.Column("group_id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("display", sa.Text),  # as the client sent it (a member's display name), else none
    sa.ForeignKeyConstraint(["tenant_id", "group_id"], ["scim_groups.tenant_id", "scim_groups.id"], ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["scim_users.tenant_id", "scim_users.id"], ondelete="CASCADE"),
    sa.Index("ix_scim_group_members_user", "tenant_id", "user_id"),
)
