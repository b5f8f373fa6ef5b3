"""Request and response models of the content API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from advocacy_common.networks import Network

Tag = Annotated[str, Field(min_length=1, max_length=50)]
Caption = Annotated[str, Field(max_length=10000)]


class AudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teams: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=100)
    programme_roles: list[Annotated[str, Field(pattern="^(sharer|creator|champion)$")]] = Field(
        default_factory=list, max_length=3
    )
    topics: list[Tag] = Field(default_factory=list, max_length=50)


def check_url(value: str) -> str:
    url = AnyUrl(value)
    if url.scheme not in ("http", "https"):
        raise ValueError("only http(s) URLs can be shared")
    if url.username or url.password:
        raise ValueError("URLs with credentials are refused")
    if not url.host:
        raise ValueError("URL needs a host")
    return value


class ContentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    url: str = Field(min_length=1, max_length=2048)
    body: str | None = Field(default=None, max_length=20000)
    tags: list[Tag] = Field(default_factory=list, max_length=30)
    captions: dict[Network, Caption] = Field(default_factory=dict)
    audience: AudienceIn = Field(default_factory=AudienceIn)
    publish_at: datetime | None = None
    expires_at: datetime | None = None

    _url = field_validator("url")(classmethod(lambda cls, v: check_url(v)))

    @field_validator("publish_at", "expires_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone offset (RFC 3339)")
        return v

    @field_validator("expires_at")
    @classmethod
    def _after_publish(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        publish_at = info.data.get("publish_at")
        if v is not None and publish_at is not None and v <= publish_at:
            raise ValueError("must be after publish_at")
        return v


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
