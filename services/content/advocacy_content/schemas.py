"""Request and response models of the content API. Request bodies refuse unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from advocacy_common.instants import Instant
from advocacy_common.networks import Network
from advocacy_common.pagination import Page
from advocacy_common.policy import MAX_BLOCKED_TERMS, MAX_TERM_CHARS
from advocacy_common.tenant import TenantSettings
from advocacy_common.urls import canonical_url

Tag = Annotated[str, Field(min_length=1, max_length=50)]
Caption = Annotated[str, Field(max_length=10000)]
Team = Annotated[str, Field(min_length=1, max_length=100)]
# a department or location as the directory keeps it (at most adapters.scim.MAX_VALUE_CHARS; a test holds them equal)
DirectoryValue = Annotated[str, Field(min_length=1, max_length=256)]
EmployeeId = Annotated[str, Field(min_length=1, max_length=200)]
ProgrammeRole = Literal["sharer", "creator", "champion"]
LeaderboardChoice = Literal["ranked", "anonymous", "hidden"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AudienceIn(_In):
    """Each non-empty list restricts who sees the item; topics only rank. Departments and locations
    are compared, exactly, with the company directory's (SCIM: the enterprise extension's
    ``department``, the primary address's ``locality``): someone the directory gives none of them
    is outside every item that lists some."""

    teams: list[Team] = Field(default_factory=list, max_length=100)
    programme_roles: list[ProgrammeRole] = Field(default_factory=list, max_length=3)
    topics: list[Tag] = Field(default_factory=list, max_length=50)
    departments: list[DirectoryValue] = Field(default_factory=list, max_length=100)
    locations: list[DirectoryValue] = Field(default_factory=list, max_length=100)


def check_url(value: str) -> str:
    """The URL in its canonical (WHATWG) form, which is what is stored (advocacy_common.urls)."""
    return canonical_url(value)


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be blank")
    return v


class ContentCreate(_In):
    title: str = Field(min_length=1, max_length=300)
    url: str = Field(min_length=1, max_length=2048)
    body: str | None = Field(default=None, max_length=20000)
    tags: list[Tag] = Field(default_factory=list, max_length=30)
    captions: dict[Network, Caption] = Field(default_factory=dict)
    audience: AudienceIn = Field(default_factory=AudienceIn)
    publish_at: Instant | None = None
    expires_at: Instant | None = None

    _url = field_validator("url")(classmethod(lambda cls, v: check_url(v)))
    _title = field_validator("title")(classmethod(lambda cls, v: _not_blank(v)))

    @field_validator("expires_at")
    @classmethod
    def _after_publish(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        publish_at = info.data.get("publish_at")
        if v is not None and publish_at is not None and v <= publish_at:
            raise ValueError("must be after publish_at")
        return v


class ContentPatch(_In):
    """Only the fields sent change; ``null`` clears ``body``, ``publish_at`` or ``expires_at``."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    body: str | None = Field(default=None, max_length=20000)
    tags: list[Tag] | None = Field(default=None, max_length=30)
    captions: dict[Network, Caption] | None = None
    audience: AudienceIn | None = None
    publish_at: Instant | None = None
    expires_at: Instant | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        return None if v is None else _not_blank(v)


class SuggestionCreate(ContentCreate):
    """An employee's proposal; ``note`` tells the reviewers why it is worth sharing."""

    note: str | None = Field(default=None, max_length=2000)


class RejectIn(_In):
    reason: str = Field(min_length=1, max_length=2000)

    _reason = field_validator("reason")(classmethod(lambda cls, v: _not_blank(v)))


class ViolationOut(BaseModel):
    rule: str
    message: str
    span: tuple[int, int]


class Approval(BaseModel):
    by: str | None
    at: datetime


class RelevanceOut(BaseModel):
    new: bool
    followed_topic: bool
    shared: bool


class ContentPublic(BaseModel):
    id: str
    title: str
    url: str
    slug: str
    body: str | None
    tags: list[str]
    captions: dict[str, str]
    audience: dict[str, list[str]]
    status: str
    publish_at: datetime | None
    expires_at: datetime | None
    published_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    proposer_id: str | None = None
    note: str | None = None
    approvals: list[Approval] = []
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    rejection_reason: str | None = None
    expired_at: datetime | None = None
    archived_at: datetime | None = None
    # admins (and proposers, for their suggestions): which caption breaks which policy rule
    caption_issues: dict[str, list[ViolationOut]] | None = None
    # the employee board: why an item is where it is
    relevance: RelevanceOut | None = None


class BoardPage(Page[ContentPublic]):
    """A board page; ``notice`` says why the board is empty for this person (roll-out, opt-out)."""

    notice: str | None = None


# -- policy --------------------------------------------------------------------------------------------
BlockedTerm = Annotated[str, Field(min_length=1, max_length=MAX_TERM_CHARS)]
Domain = Annotated[str, Field(min_length=1, max_length=253)]


class PolicyIn(_In):
    guidelines: str = Field(default="", max_length=100_000)
    blocked_terms: list[BlockedTerm] = Field(default_factory=list, max_length=MAX_BLOCKED_TERMS)
    required_disclosures: dict[Network, Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=dict
    )
    allowed_domains: list[Domain] = Field(default_factory=list, max_length=1000)
    max_lengths: dict[Network, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)


class PolicyPublic(BaseModel):
    version: int
    guidelines: str
    # only admins see the list itself: a blocked codename is itself confidential
    blocked_terms: list[str] | None
    required_disclosures: dict[str, str]
    allowed_domains: list[str]
    max_lengths: dict[str, int]
    updated_by: str | None
    updated_at: datetime | None


class PolicyVersionPublic(PolicyPublic):
    changes: list[dict[str, Any]]


class PolicyCheckIn(_In):
    network: Network
    text: str = Field(max_length=100_000)
    link: str | None = Field(default=None, max_length=2048)


class PolicyCheckOut(BaseModel):
    ok: bool
    policy_version: int
    length: int
    limit: int
    violations: list[ViolationOut]


# -- tenant settings -----------------------------------------------------------------------------------
class TenantSettingsPublic(TenantSettings):
    updated_at: datetime | None = None


# -- membership and topics ----------------------------------------------------------------------------
class TopicsIn(_In):
    topics: list[Tag] = Field(max_length=50)


class TopicsPublic(BaseModel):
    topics: list[str]


class MembershipIn(_In):
    enrolled: bool
    programme_roles: list[ProgrammeRole] = Field(default_factory=list, max_length=3)
    leaderboard: LeaderboardChoice = "ranked"


class WaveRef(BaseModel):
    id: str
    name: str
    starts_at: datetime


class MembershipPublic(BaseModel):
    employee_id: str
    enrolled: bool
    programme_roles: list[str]
    leaderboard: str
    board_open: bool
    notice: str | None = None
    wave: WaveRef | None = None


# -- waves ---------------------------------------------------------------------------------------------
class WaveCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    starts_at: Instant
    teams: list[Team] = Field(default_factory=list, max_length=1000)
    employees: list[EmployeeId] = Field(default_factory=list, max_length=10_000)

    _name = field_validator("name")(classmethod(lambda cls, v: _not_blank(v)))


class WavePatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: Instant | None = None
    teams: list[Team] | None = Field(default=None, max_length=1000)
    employees: list[EmployeeId] | None = Field(default=None, max_length=10_000)


class WavePublic(BaseModel):
    id: str
    name: str
    starts_at: datetime
    teams: list[str]
    employees: list[str]
    started: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


# -- coaching ------------------------------------------------------------------------------------------
class CoachingCreate(_In):
    network: Network
    draft: str = Field(min_length=1, max_length=20_000)
    question: str = Field(min_length=1, max_length=5000)

    _q = field_validator("draft", "question")(classmethod(lambda cls, v: _not_blank(v)))


class ReplyIn(_In):
    text: str = Field(min_length=1, max_length=10_000)

    _t = field_validator("text")(classmethod(lambda cls, v: _not_blank(v)))


class ReplyPublic(BaseModel):
    id: str
    author_id: str | None
    author_role: str
    text: str
    created_at: datetime


class CoachingPublic(BaseModel):
    id: str
    requester_id: str
    network: str
    draft: str
    question: str
    status: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    reply_count: int = 0
    replies: list[ReplyPublic] | None = None
    # the draft judged against the tenant policy, so the coach sees what would be refused
    violations: list[ViolationOut] | None = None
