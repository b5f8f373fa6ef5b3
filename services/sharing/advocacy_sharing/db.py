"""Sharing's tables: its copy of published content, shares (tracked links) and clicks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from advocacy_common.audit import add_audit_table
from advocacy_common.db import add_messaging_tables
from advocacy_common.tenant_store import add_tenant_settings_table
from advocacy_common.tombstones import add_tombstone_tables


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)
add_tenant_settings_table(metadata)
add_tombstone_tables(metadata)  # erased people, keyed: their later shares are refused
add_audit_table(metadata)

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
    # who the item is for ({"teams": [...], "programme_roles": [...]}): empty lists, everyone
    audience: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"))
    )


class MemberCopy(Model, table=True):
    """Programme membership from content's member.updated: no row, the defaults (enrolled, no
    programme role). A share is refused when the board would not show the item."""

    __tablename__ = "member_copies"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    enrolled: bool
    programme_roles: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    updated_at: datetime = Field(sa_type=TS)


class DirectoryCopy(Model, table=True):
    """The company directory's record of a person (content's member.provisioned, issue 17), replaced
    whole by each newer event. No row: the tenant has no directory for them (the token decides).
    ``active: false`` refuses their new shares; their team, department and location decide which
    items are meant for them."""

    __tablename__ = "directory_copies"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    active: bool
    team: str | None = None
    department: str | None = None
    location: str | None = None
    updated_at: datetime = Field(sa_type=TS)


class WaveCopy(Model, table=True):
    """Roll-out waves from content's wave.updated; a deleted wave keeps its row (``deleted``) so an
    older, late update cannot bring it back."""

    __tablename__ = "wave_copies"

    tenant_id: str = Field(primary_key=True)
    wave_id: str = Field(primary_key=True)
    name: str
    starts_at: datetime = Field(sa_type=TS)
    teams: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    employees: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    deleted: bool = False
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
    # The visitor key of the request that created the share (self-click detection; no raw IP).
    creator_visitor: str | None = None
    # The employee's audience on this network when they shared (reach).
    audience_size: int = 0


class Click(Model, table=True):
    """Every request on /r/{code}, with its verdict: the click journal."""

    __tablename__ = "clicks"
    __table_args__ = (
        sa.Index("ix_clicks_code_visitor", "code", "visitor", "received_at"),
        sa.Index("ix_clicks_tenant_received", "tenant_id", "received_at"),
        sa.Index("ix_clicks_employee", "tenant_id", "employee_id"),
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
    method: str = "GET"
    # Why a bot verdict is one (``ua_not_browser``, ``known_crawler:<source>``, ``scanner_timing``, ...).
    reason: str | None = None
    # The visitor's network (IPv4 /24, IPv6 /48) and whether Accept-Language came: the scanner rules.
    ip_network: str | None = None
    accept_language: bool | None = None
    # Set when an admin judged the click fraudulent after the fact (the consumers reverse it).
    invalidated_at: datetime | None = Field(default=None, sa_type=TS)
    invalidation_reason: str | None = None


class Account(Model, table=True):
    """An employee's account on a network and its audience size."""

    __tablename__ = "accounts"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    network: str = Field(primary_key=True)
    handle: str
    audience_size: int
    updated_at: datetime = Field(sa_type=TS)


class PolicyCopy(Model, table=True):
    """The latest sharing policy of each tenant, from content's policy events."""

    __tablename__ = "policies"

    tenant_id: str = Field(primary_key=True)
    version: int
    body: dict[str, Any] = Field(sa_type=JSONB)
    updated_at: datetime = Field(sa_type=TS)


#: The partner every tenant has: what existed before partners were principals (secrets, conversions
#: reported with the tenant's secret or by an admin) belongs to it.
DEFAULT_PARTNER = "default"


class Partner(Model, table=True):
    """A partner of one tenant (a CRM, a shop...): its own conversion secrets and ``external_id`` space.
    A revoked partner keeps its row (its conversions name it) and its id is never given again."""

    __tablename__ = "partners"

    tenant_id: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    name: str
    created_at: datetime = Field(sa_type=TS)
    revoked_at: datetime | None = Field(default=None, sa_type=TS)


class Conversion(Model, table=True):
    __tablename__ = "conversions"
    # Each partner's external ids are its own: two partners' "order-1" are two conversions.
    __table_args__ = (sa.UniqueConstraint("tenant_id", "partner_id", "external_id", name="uq_conversion_external_id"),)

    id: str = Field(primary_key=True)
    tenant_id: str
    partner_id: str = Field(default=DEFAULT_PARTNER, sa_column_kwargs={"server_default": DEFAULT_PARTNER})
    external_id: str
    click_id: str
    code: str
    share_id: str
    employee_id: str | None
    content_id: str
    network: str
    kind: str
    value_amount: Decimal | None = Field(default=None, sa_type=sa.Numeric(18, 4))
    value_currency: str | None = None
    clicked_at: datetime = Field(sa_type=TS)
    occurred_at: datetime = Field(sa_type=TS)


class ConversionSecret(Model, table=True):
    """A partner's secret for signed conversions. After a rotation the previous one keeps working
    until ``retired_at`` (a grace period for the partner to switch); a revocation retires all now."""

    __tablename__ = "conversion_secrets"
    __table_args__ = (sa.Index("ix_conversion_secrets_tenant", "tenant_id", "created_at"),)

    id: str = Field(primary_key=True)
    tenant_id: str
    partner_id: str = Field(default=DEFAULT_PARTNER, sa_column_kwargs={"server_default": DEFAULT_PARTNER})
    secret: str
    created_at: datetime = Field(sa_type=TS)
    retired_at: datetime | None = Field(default=None, sa_type=TS)


class ActionLinkUse(Model, table=True):
    """A one-click share link (advocacy_common.action_links) that was used: its ``jti``, recorded
    in the transaction that created (or found) the share, so a link acts once. No person in it: the
    share it made says who, and is unlinked on erasure like every share. A row is useless once the
    link has expired (``expires_at``) and may be deleted then."""

    __tablename__ = "action_link_uses"

    tenant_id: str = Field(primary_key=True)
    jti: str = Field(primary_key=True)
    share_id: str
    used_at: datetime = Field(sa_type=TS)
    expires_at: datetime = Field(sa_type=TS)
