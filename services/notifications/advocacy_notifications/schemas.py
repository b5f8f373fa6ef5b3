from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from advocacy_notifications.domain import (
    CHAT_URL_MAX,
    MAX_TEMPLATE_SOURCE,
    Category,
    Channel,
    ChatChannel,
    Frequency,
    Language,
    TemplateName,
)


class PreferenceOut(BaseModel):
    category: Category
    channel: Channel
    frequency: Frequency
    # False: the tenant's default applies (the person chose nothing)
    chosen: bool


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frequency: Frequency


class DefaultsBody(BaseModel):
    """A tenant's defaults for people who chose nothing."""

    model_config = ConfigDict(extra="forbid")

    digest_frequency: Frequency
    digest_hour: int = Field(ge=0, le=23, description="Local hour (tenant's time zone) digests are sent at.")


class Unsubscribed(BaseModel):
    category: Category
    channel: Channel
    frequency: Frequency


class ChatChannelIn(BaseModel):
    """A team channel's incoming-webhook URL (Slack) or Workflows webhook URL (Teams)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=CHAT_URL_MAX, description="Kept secret: shown masked afterwards.")


class ChatChannelOut(BaseModel):
    channel: ChatChannel
    url: str = Field(description="Masked: the origin and the last characters, never the whole URL.")
    updated_at: datetime


class LanguageIn(BaseModel):
    """The language of the caller's messages; null forgets the choice (the tenant's default applies)."""

    model_config = ConfigDict(extra="forbid")

    language: Language | None


class LanguageOut(BaseModel):
    language: Language = Field(description="The language the caller's messages are written in.")
    # False: the tenant's default applies (the person chose nothing)
    chosen: bool


class TenantLanguageBody(BaseModel):
    """The language of the messages of people who chose none."""

    model_config = ConfigDict(extra="forbid")

    language: Language


class TemplateOverrideIn(BaseModel):
    """A tenant's wording of one message in one language: Jinja2 sources, rendered in a sandbox (the
    HTML part autoescaped) with the message's variables only. A part left out or empty is the
    built-in one. A source that does not compile or render is a 422 naming the part and the line."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(None, max_length=MAX_TEMPLATE_SOURCE)
    text: str | None = Field(None, max_length=MAX_TEMPLATE_SOURCE)
    html: str | None = Field(None, max_length=MAX_TEMPLATE_SOURCE)


class TemplateOverrideOut(BaseModel):
    name: TemplateName
    language: Language
    subject: str | None
    text: str | None
    html: str | None
    updated_at: datetime
