from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from advocacy_notifications.domain import CHAT_URL_MAX, Category, Channel, ChatChannel, Frequency


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
