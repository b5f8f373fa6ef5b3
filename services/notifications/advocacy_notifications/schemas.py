from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from advocacy_notifications.domain import Category, Channel, Frequency


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
