"""Events the content service publishes (topic ``advocacy.content``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from advocacy_common import topics
from advocacy_common.events.base import EventData, register
from advocacy_common.tenant import TenantSettings


class Audience(BaseModel):
    """Who an item is for. Each non-empty list restricts (teams, departments, locations, programme
    roles); topics only rank. Departments and locations are the directory's (issue 17)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    teams: list[str] = []
    programme_roles: list[str] = []
    topics: list[str] = []
    departments: list[str] = []
    locations: list[str] = []


class _ContentEvent(EventData):
    TOPIC = topics.CONTENT
    content_id: str

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:{self.content_id}"

    def subject(self) -> str | None:
        return self.content_id


@register
class ContentPublished(_ContentEvent):
    """A content item became visible on the advocacy board (sharing starts accepting shares)."""

    TYPE = "io.advocacy.content.published.v1"
    PARTNER_VISIBLE = True

    title: str
    url: str
    slug: str
    tags: list[str] = []
    captions: dict[str, str] = {}
    audience: Audience = Audience()
    published_at: datetime
    expires_at: datetime | None = None


@register
class ContentUpdated(_ContentEvent):
    """A published item changed (title, URL, captions, audience, expiry): copies must follow."""

    TYPE = "io.advocacy.content.updated.v1"

    title: str
    url: str
    slug: str
    tags: list[str] = []
    captions: dict[str, str] = {}
    audience: Audience = Audience()
    status: str
    expires_at: datetime | None = None
    updated_at: datetime


@register
class ContentExpired(_ContentEvent):
    TYPE = "io.advocacy.content.expired.v1"
    PARTNER_VISIBLE = True

    expired_at: datetime


@register
class ContentArchived(_ContentEvent):
    TYPE = "io.advocacy.content.archived.v1"
    PARTNER_VISIBLE = True

    archived_at: datetime


@register
class SuggestionApproved(_ContentEvent):
    """An employee's suggestion became published content, credited to the proposer."""

    TYPE = "io.advocacy.content.suggestion_approved.v1"
    PARTNER_VISIBLE = True

    proposer_id: str
    approved_by: str
    approved_at: datetime
    # added in place (optional): the item's title, so the proposer's notice can name it
    title: str | None = None


@register
class SuggestionRejected(_ContentEvent):
    """An admin rejected an employee's suggestion; the proposer hears why (``reason``, what the
    admin wrote, at most 2,000 characters). Not partner-visible: the reason is free text."""

    TYPE = "io.advocacy.content.suggestion_rejected.v1"

    proposer_id: str
    title: str
    rejected_by: str
    reason: str | None = None
    rejected_at: datetime


@register
class CoachingReplied(EventData):
    """A coach replied to an employee's coaching request (the requester is told). The reply itself
    stays in content: threads are private, so the event carries ids and the time, no text. Keyed by
    tenant + requester, like the person's other events."""

    TOPIC = topics.CONTENT
    TYPE = "io.advocacy.coaching.replied.v1"

    request_id: str
    reply_id: str
    requester_id: str
    coach_id: str
    replied_at: datetime

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:{self.requester_id}"

    def subject(self) -> str | None:
        return self.request_id


class _TenantEvent(EventData):
    TOPIC = topics.CONTENT


@register
class PolicyUpdated(_TenantEvent):
    """A new version of the tenant's sharing policy; sharing judges messages against the latest."""

    TYPE = "io.advocacy.policy.updated.v1"

    version: int
    blocked_terms: list[str] = []
    required_disclosures: dict[str, str] = {}
    allowed_domains: list[str] = []
    max_lengths: dict[str, int] = {}
    updated_by: str
    updated_at: datetime


@register
class TenantSettingsUpdated(_TenantEvent):
    TYPE = "io.advocacy.tenant.settings_updated.v1"

    settings: TenantSettings
    updated_at: datetime


@register
class WaveUpdated(_TenantEvent):
    """A roll-out wave was created, changed or deleted (``deleted``): the whole wave, so a copy is
    replaced, never patched. Sharing gates shares with the same waves the board is gated with.
    Keyed by tenant: a tenant's wave changes arrive in order."""

    TYPE = "io.advocacy.wave.updated.v1"

    wave_id: str
    name: str
    starts_at: datetime
    teams: list[str] = []
    employees: list[str] = []
    deleted: bool = False
    updated_at: datetime


class _MemberEvent(EventData):
    TOPIC = topics.CONTENT
    employee_id: str

    def partition_key(self, tenant_id: str) -> str:
        return f"{tenant_id}:{self.employee_id}"

    def subject(self) -> str | None:
        return self.employee_id


@register
class MemberUpdated(_MemberEvent):
    """Programme membership: enrolment, programme roles, leaderboard visibility."""

    TYPE = "io.advocacy.member.updated.v1"

    enrolled: bool
    programme_roles: list[str] = []
    leaderboard: str = "ranked"  # ranked | anonymous | hidden
    name: str | None = None
    team: str | None = None
    updated_at: datetime


@register
class MemberErased(_MemberEvent):
    """Right to erasure: every service forgets the person (see each service's handler). Partners get
    it too (ids and time only): docs/partners.md says what they must then delete."""

    TYPE = "io.advocacy.member.erased.v1"
    PARTNER_VISIBLE = True

    erased_at: datetime


@register
class MemberProvisioned(_MemberEvent):
    """The directory's whole record of one person, sent when SCIM provisioning creates or changes
    them (issue 17): copies are replaced, never patched. ``active: false`` is a deactivation: the
    person leaves boards, streams and rankings and may not share, but their links keep answering.
    Eligible workforce = provisioned and active. Deletion is not this event: it is ``member.erased``.
    ``employee_id`` is the id tokens name the person by (the mapped subject claim)."""

    TYPE = "io.advocacy.member.provisioned.v1"

    active: bool
    user_name: str
    display_name: str | None = None
    team: str | None = None
    department: str | None = None
    location: str | None = None
    manager_id: str | None = None
    employee_number: str | None = None
    updated_at: datetime
    # The person's language as the directory gives it (SCIM ``preferredLanguage``, else ``locale``):
    # a BCP 47 tag such as ``de-DE``; messages are written in it when the person chose none.
    preferred_language: str | None = Field(default=None, max_length=35)


@register
class TeamUpdated(_TenantEvent):
    """A directory team (a SCIM group, or an attribute value, as the tenant chose) and its size in
    active provisioned members; ``deleted`` when it is gone. The per-capita team board divides by
    ``size``. Keyed by tenant: a tenant's team changes arrive in order."""

    TYPE = "io.advocacy.team.updated.v1"

    team: str
    size: int
    deleted: bool = False
    updated_at: datetime
