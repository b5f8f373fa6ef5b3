"""Notifications' tables: its copies of what other services know (people, content, tenant
settings), what people chose, and every message it composed.

A message is one row from the moment it is composed: ``dedupe_key`` is unique per tenant, so the
same digest is never composed twice, and ``state`` only moves pending -> sent (or failed), so a
message recorded as sent is never handed to SMTP again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from advocacy_common.db import add_messaging_tables, table_of
from advocacy_common.tenant_store import add_tenant_settings_table
from advocacy_common.tombstones import add_tombstone_tables
from advocacy_notifications.domain import (
    DEFAULT_DIGEST_HOUR,
    DEFAULT_EXPIRING_NOTICE_HOURS,
    DEFAULT_FREQUENCY,
    DEFAULT_NUDGE_AFTER_DAYS,
    Defaults,
    Frequency,
    Language,
    QuietHours,
)

_LANGUAGES = {lang.value for lang in Language}


class Model(SQLModel, registry=registry()):
    """Base of this service's tables: its own registry, so its metadata holds only its tables."""


metadata = Model.metadata
add_messaging_tables(metadata)
add_tenant_settings_table(metadata)
add_tombstone_tables(metadata)

TS = sa.DateTime(timezone=True)


class Member(Model, table=True):
    """What notifications knows of a person: membership (content's ``member.updated``) and the
    company directory (``member.provisioned``), each applied only when newer than what it holds."""

    __tablename__ = "members"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    name: str | None = None
    email: str | None = None
    # the directory's team when it names one, else membership's
    team: str | None = None
    member_team: str | None = None
    department: str | None = None
    location: str | None = None
    active: bool = True
    enrolled: bool = True
    # gamification's leaderboard visibility (membership's): ranked | anonymous | hidden; team
    # channels name only the ranked
    leaderboard: str = Field(default="ranked", sa_column_kwargs={"server_default": "ranked"})
    programme_roles: list[str] = Field(default_factory=list, sa_type=sa.ARRAY(sa.Text))
    membership_at: datetime | None = Field(default=None, sa_type=TS)
    directory_at: datetime | None = Field(default=None, sa_type=TS)
    # the directory's own team (None when it names none): the audience is judged by
    # eligibility.team_of(directory_team, member_team), as content's board does
    directory_team: str | None = None
    # sharing's share.created: the person's last share; when we first knew them (a person who
    # never shared is silent since then); the period of silence they were last nudged for
    last_shared_at: datetime | None = Field(default=None, sa_type=TS)
    first_seen_at: datetime | None = Field(
        default=None, sa_type=TS, sa_column_kwargs={"server_default": sa.text("now()")}
    )
    nudged_for: datetime | None = Field(default=None, sa_type=TS)
    # the directory's language for the person (SCIM preferredLanguage, else locale): their messages'
    # language when they chose none (features/wording.py)
    directory_language: str | None = None


class ContentCopy(Model, table=True):
    """A content item as content's events describe it: what a digest lists, and for whom."""

    __tablename__ = "content_copies"
    __table_args__ = (sa.Index("ix_content_published", "tenant_id", "published_at"),)

    tenant_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    title: str
    url: str
    audience: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    # the networks its admin wrote a caption for: a digest's share buttons (action_links.networks_for)
    networks: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.ARRAY(sa.Text), nullable=False, server_default="{}")
    )
    status: str = "published"
    published_at: datetime = Field(sa_type=TS)
    expires_at: datetime | None = Field(default=None, sa_type=TS)
    updated_at: datetime = Field(sa_type=TS)


class Preference(Model, table=True):
    """A person's choice for one category on one channel (no row: the tenant's default)."""

    __tablename__ = "preferences"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    category: str = Field(primary_key=True)
    channel: str = Field(primary_key=True)
    frequency: str
    updated_at: datetime = Field(sa_type=TS)


class TenantDefaults(Model, table=True):
    """A tenant's defaults for people who chose nothing (no row: the domain's defaults), in one row:
    read with :func:`load_defaults`, written with :func:`save_defaults` and nothing else (the
    expiry scan's join reads ``expiring_notice_hours`` set-wise). Per category and channel, the
    defaults are rows of their own (:class:`CategoryDefault`)."""

    __tablename__ = "tenant_defaults"

    tenant_id: str = Field(primary_key=True)
    digest_frequency: str
    digest_hour: int
    updated_at: datetime = Field(sa_type=TS)
    nudge_after_days: int = Field(default=30, sa_column_kwargs={"server_default": "30"})
    expiring_notice_hours: int = Field(default=24, sa_column_kwargs={"server_default": "24"})
    # the tenant's quiet hours (both or neither): local hours no message is delivered in
    quiet_start: int | None = None
    quiet_end: int | None = None
    # the messages' language for people who chose none (None: English); migration 0012 moved it here
    # from tenant_languages
    language: str | None = None


class DigestState(Model, table=True):
    """The slot of a person's last digest (sent, or found empty): the next covers what came after."""

    __tablename__ = "digest_states"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    last_slot: datetime = Field(sa_type=TS)


class Suppression(Model, table=True):
    """An address that bounced for good (a 5xx refusal of the recipient): nothing is written to it
    again until the directory gives the person another address."""

    __tablename__ = "suppressions"

    tenant_id: str = Field(primary_key=True)
    email: str = Field(primary_key=True)
    employee_id: str
    reason: str
    created_at: datetime = Field(sa_type=TS)


class Message(Model, table=True):
    """One composed message and where it stands (pending -> sent | failed)."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "dedupe_key", name="uq_messages_dedupe"),
        sa.Index("ix_messages_pending", "next_attempt_at", postgresql_where=sa.text("state = 'pending'")),
        sa.Index("ix_messages_employee", "tenant_id", "employee_id"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    employee_id: str
    dedupe_key: str
    category: str
    channel: str
    recipient: str
    subject: str
    body_text: str
    body_html: str
    headers: dict[str, str] = Field(default_factory=dict, sa_type=JSONB)
    state: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_type=TS)
    next_attempt_at: datetime = Field(sa_type=TS)
    sent_at: datetime | None = Field(default=None, sa_type=TS)


class ChatChannelRow(Model, table=True):
    """A tenant's team channel (Slack or Teams) and its incoming-webhook URL, a credential: the API
    shows it masked (domain.mask_url)."""

    __tablename__ = "chat_channels"

    tenant_id: str = Field(primary_key=True)
    channel: str = Field(primary_key=True)
    url: str
    updated_at: datetime = Field(sa_type=TS)


class ChatMessage(Model, table=True):
    """One message to a tenant's team channel (``body``: the JSON payload as posted, Block Kit or
    the Teams Workflows envelope), pending -> sent | failed | cancelled, like mail.
    ``employee_id`` is whom it is about (erasure deletes it)."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "dedupe_key", name="uq_chat_messages_dedupe"),
        sa.Index("ix_chat_messages_pending", "next_attempt_at", postgresql_where=sa.text("state = 'pending'")),
        sa.Index("ix_chat_messages_employee", "tenant_id", "employee_id"),
    )

    id: str = Field(primary_key=True)
    tenant_id: str
    channel: str
    employee_id: str | None = None
    dedupe_key: str
    category: str
    body: dict[str, Any] = Field(sa_type=JSONB)
    state: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_type=TS)
    next_attempt_at: datetime = Field(sa_type=TS)
    sent_at: datetime | None = Field(default=None, sa_type=TS)


class TemplateOverride(Model, table=True):
    """A tenant's own wording of one message in one language (adapters/overrides.py checked it
    when it was saved); a part left empty (None) is the built-in one."""

    __tablename__ = "template_overrides"

    tenant_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    language: str = Field(primary_key=True)
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    updated_at: datetime = Field(sa_type=TS)


class MemberLanguage(Model, table=True):
    """The language a person chose for their messages (no row: the tenant's default)."""

    __tablename__ = "member_languages"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    language: str
    updated_at: datetime = Field(sa_type=TS)


class TenantLanguage(Model, table=True):
    """Superseded by ``TenantDefaults.language`` (migration 0012), kept for the release before it
    (expand-only): a trigger copies that release's writes here into ``tenant_defaults``. This
    release neither reads nor writes it."""

    __tablename__ = "tenant_languages"

    tenant_id: str = Field(primary_key=True)
    language: str
    updated_at: datetime = Field(sa_type=TS)


class QuietHoursRow(Model, table=True):
    """A person's own quiet hours (no row: the tenant's); both hours None: none, whatever the
    tenant's default."""

    __tablename__ = "quiet_hours"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    start_hour: int | None = None
    end_hour: int | None = None
    updated_at: datetime = Field(sa_type=TS)


class SharedItem(Model, table=True):
    """What a person shared (sharing's share.created): nobody is told an item they shared expires."""

    __tablename__ = "shared_items"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    shared_at: datetime = Field(sa_type=TS)


class WaveCopy(Model, table=True):
    """Roll-out waves from content's wave.updated, as sharing keeps them: a deleted wave keeps its
    row (``deleted``) so an older, late update cannot bring it back."""

    __tablename__ = "wave_copies"

    tenant_id: str = Field(primary_key=True)
    wave_id: str = Field(primary_key=True)
    name: str
    starts_at: datetime = Field(sa_type=TS)
    teams: list[str] = Field(default_factory=list, sa_type=sa.ARRAY(sa.Text))
    employees: list[str] = Field(default_factory=list, sa_type=sa.ARRAY(sa.Text))
    deleted: bool = False
    updated_at: datetime = Field(sa_type=TS)


class ExpiryScan(Model, table=True):
    """How far the expiring-content pass got through the tenant's people for one item and expiry
    (``after``: the last employee id looked at): each pass goes on from there, a bounded page.
    ``started_at``: when this sweep began; a wave of the tenant opening after it makes a finished
    sweep start again (features/expiring.py)."""

    __tablename__ = "expiry_scans"

    tenant_id: str = Field(primary_key=True)
    content_id: str = Field(primary_key=True)
    expires_at: datetime = Field(sa_type=TS)
    after: str | None = None
    finished: bool = False
    started_at: datetime | None = Field(default=None, sa_type=TS)


class ReportAdmin(Model, table=True):
    """A recipient of the weekly programme report (features/reports.py): a tenant admin, as their
    token (role ``admin``) showed them to this service's API (``seen_at``: the last time), and/or
    a person the tenant listed (``listed_at``: since when; null: not listed)."""

    __tablename__ = "report_admins"

    tenant_id: str = Field(primary_key=True)
    employee_id: str = Field(primary_key=True)
    seen_at: datetime | None = Field(default=None, sa_type=TS)
    listed_at: datetime | None = Field(default=None, sa_type=TS)


class ReportCopy(Model, table=True):
    """A weekly programme report from metrics (``report.weekly``), kept until its messages are
    composed; then ``report`` is cleared and the row remains as the mark that it was."""

    __tablename__ = "report_copies"

    tenant_id: str = Field(primary_key=True)
    week_start: date = Field(primary_key=True)
    report: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    received_at: datetime = Field(sa_type=TS)
    composed_at: datetime | None = Field(default=None, sa_type=TS)


class CategoryDefault(Model, table=True):
    """A tenant's default for one category on one channel, for people who chose nothing (no row:
    ``on``; the digest's default is ``TenantDefaults.digest_frequency``)."""

    __tablename__ = "category_defaults"

    tenant_id: str = Field(primary_key=True)
    category: str = Field(primary_key=True)
    channel: str = Field(primary_key=True)
    frequency: str
    updated_at: datetime = Field(sa_type=TS)


class ChallengeCopy(Model, table=True):
    """A challenge as gamification's events describe it, and how far its two announcements to the
    tenant's people got (``*_after``: the last employee id told; ``*_done``: everyone was)."""

    __tablename__ = "challenge_copies"
    __table_args__ = (
        sa.Index("ix_challenge_copies_start", "starts_at", postgresql_where=sa.text("NOT start_done")),
        sa.Index(
            "ix_challenge_copies_end",
            "finalised_at",
            postgresql_where=sa.text("finalised_at IS NOT NULL AND NOT end_done"),
        ),
    )

    tenant_id: str = Field(primary_key=True)
    challenge_id: str = Field(primary_key=True)
    name: str
    starts_at: datetime = Field(sa_type=TS)
    ends_at: datetime = Field(sa_type=TS)
    goal_kind: str
    finalised_at: datetime | None = Field(default=None, sa_type=TS)
    start_after: str | None = None
    start_done: bool = False
    end_after: str | None = None
    end_done: bool = False


# -- the tenant's defaults: one way to read them, one way to write them ------------------------------
_DEFAULTS = table_of(TenantDefaults)


async def load_defaults(session: AsyncSession, tenant_id: str) -> Defaults:
    """The tenant's defaults; the domain's for a tenant that set none (or a part it did not set)."""
    row = await session.get(TenantDefaults, tenant_id)
    if row is None:
        return Defaults()
    quiet = (
        QuietHours(row.quiet_start, row.quiet_end)
        if row.quiet_start is not None and row.quiet_end is not None
        else None
    )
    return Defaults(
        digest_frequency=Frequency(row.digest_frequency),
        digest_hour=row.digest_hour,
        nudge_after_days=row.nudge_after_days,
        expiring_notice_hours=row.expiring_notice_hours,
        quiet_hours=quiet,
        language=Language(row.language) if row.language in _LANGUAGES else Language.en,
    )


async def save_defaults(session: AsyncSession, tenant_id: str, now: datetime, **columns: Any) -> None:
    """Sets the given columns of the tenant's defaults, the others unchanged (a tenant's first write
    takes the domain's defaults for them): the digest's and the notices' settings with the quiet
    hours (PUT /defaults) and the language (PUT /defaults/language) are written apart."""
    unknown = set(columns) - set(_DEFAULTS.c.keys())
    assert not unknown, f"no such default: {unknown}"
    first = {
        "digest_frequency": DEFAULT_FREQUENCY.value,
        "digest_hour": DEFAULT_DIGEST_HOUR,
        "nudge_after_days": DEFAULT_NUDGE_AFTER_DAYS,
        "expiring_notice_hours": DEFAULT_EXPIRING_NOTICE_HOURS,
    }
    values = {**first, **columns, "updated_at": now}
    stmt = pg_insert(_DEFAULTS).values(tenant_id=tenant_id, **values)
    changed = [*columns, "updated_at"]
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id"], set_={k: stmt.excluded[k] for k in changed})
    )
