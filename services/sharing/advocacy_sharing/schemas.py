from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from advocacy_common.instants import Instant
from advocacy_common.money import Money
from advocacy_common.networks import Network


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_id: str = Field(min_length=1, max_length=64)
    network: Network
    message: str | None = Field(default=None, max_length=70000)


class ShareTicketIn(BaseModel):
    """What a share ticket allows: this item, on this network (the message comes with the ticket)."""

    model_config = ConfigDict(extra="forbid")

    content_id: str = Field(min_length=1, max_length=64)
    network: Network


class ShareTicket(BaseModel):
    ticket: str
    expires_at: datetime


class ShareWithTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket: str = Field(min_length=1, max_length=2048)
    message: str | None = Field(default=None, max_length=70000)


class SharePublic(BaseModel):
    id: str
    code: str
    link: str
    intent_url: str | None
    network: str
    content_id: str
    message: str | None
    warnings: list[str] = []
    employee_id: str | None = None
    audience_size: int = 0
    created_at: datetime | None = None


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=1, max_length=200)
    audience_size: int = Field(ge=0, le=2_000_000_000)


class AccountPublic(BaseModel):
    network: str
    handle: str
    audience_size: int
    updated_at: datetime


class AccountList(BaseModel):
    items: list[AccountPublic]


class InvalidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link_code: str | None = Field(default=None, min_length=1, max_length=64)
    visitor: str | None = Field(default=None, min_length=1, max_length=128)
    referrer_domain: str | None = Field(default=None, min_length=1, max_length=255)
    from_: Instant | None = Field(default=None, alias="from")
    to: Instant | None = None
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _some_filter(self) -> InvalidateIn:
        if not (self.link_code or self.visitor or self.referrer_domain or self.from_ or self.to):
            raise ValueError("name at least one of link_code, visitor, referrer_domain, from, to")
        if self.from_ and self.to and self.from_ >= self.to:
            raise ValueError("'from' must be before 'to'")
        return self


class InvalidateOut(BaseModel):
    invalidated: int


class VerdictCount(BaseModel):
    """Clicks of one link with one verdict and reason (``reason``: why a ``bot`` is one;
    ``taken_back``: why a counted click was invalidated afterwards, by an admin or a scanner rule)."""

    verdict: str
    reason: str | None
    taken_back: str | None
    clicks: int


class LinkVerdicts(BaseModel):
    code: str
    items: list[VerdictCount]


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    click_id: str = Field(min_length=1, max_length=128)
    kind: Literal["signup", "lead", "sale"]
    value: Money | None = None
    external_id: str = Field(min_length=1, max_length=200)


class ConversionOut(BaseModel):
    conversion_id: str


class SecretOut(BaseModel):
    secret: str
    created_at: datetime
    previous_valid_until: datetime | None


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=63,
        description="The partner's id: its tokens' `sub`, its `X-Advocacy-Partner` header (a-z, 0-9, '.', '_', '-').",
    )
    name: str = Field(min_length=1, max_length=200)


class PartnerOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = Field(None, description="Set once revoked: its secrets and tokens stopped then.")


class PartnerCreated(PartnerOut):
    secret: str = Field(description="The partner's first conversion secret (shown once).")


class RefusedLinkOut(BaseModel):
    code: str
    content_id: str
    network: str
    created_at: datetime
    reason: str = Field(description="Why the canonical URL rules refuse the content's URL (the link answers 410).")
