from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from advocacy_notifications.domain import (
    CHAT_URL_MAX,
    DEFAULT_EXPIRING_NOTICE_HOURS,
    DEFAULT_NUDGE_AFTER_DAYS,
    MAX_EXPIRING_NOTICE_HOURS,
    MAX_NUDGE_AFTER_DAYS,
    MAX_REPORT_RECIPIENTS,
    MAX_TEMPLATE_SOURCE,
    Category,
    Channel,
    ChatChannel,
    Frequency,
    Language,
    QuietHours,
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


class QuietHoursBody(BaseModel):
    """Local hours (the tenant's time zone) no message is delivered in: from ``start_hour`` up to
    ``end_hour``, wrapping midnight when the start is later (22 to 7: the night). Both null: none."""

    model_config = ConfigDict(extra="forbid")

    start_hour: int | None = Field(ge=0, le=23)
    end_hour: int | None = Field(ge=0, le=23)

    @model_validator(mode="after")
    def _both_or_neither(self) -> QuietHoursBody:
        if (self.start_hour is None) != (self.end_hour is None):
            raise ValueError("give both start_hour and end_hour, or neither (no quiet hours)")
        if self.start_hour is not None and self.start_hour == self.end_hour:
            raise ValueError("start_hour and end_hour must differ (22 to 7 is the night)")
        return self

    def hours(self) -> QuietHours | None:
        if self.start_hour is None or self.end_hour is None:
            return None
        return QuietHours(self.start_hour, self.end_hour)


class QuietHoursOut(BaseModel):
    start_hour: int | None
    end_hour: int | None
    # False: the tenant's default applies (the person set none of their own)
    chosen: bool


class DefaultsBody(BaseModel):
    """A tenant's defaults for people who chose nothing."""

    model_config = ConfigDict(extra="forbid")

    digest_frequency: Frequency
    digest_hour: int = Field(ge=0, le=23, description="Local hour (tenant's time zone) digests are sent at.")
    nudge_after_days: int = Field(
        DEFAULT_NUDGE_AFTER_DAYS,
        ge=0,
        le=MAX_NUDGE_AFTER_DAYS,
        description="A person who has not shared in this many days is nudged, once per such period; 0: never.",
    )
    expiring_notice_hours: int = Field(
        DEFAULT_EXPIRING_NOTICE_HOURS,
        ge=1,
        le=MAX_EXPIRING_NOTICE_HOURS,
        description="How long before an item expires the people who have not shared it are told.",
    )
    quiet_hours: QuietHoursBody | None = Field(None, description="The quiet hours of people who set none.")


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


class ReportRecipientsBody(BaseModel):
    """The people the tenant's weekly programme report goes to besides the admins who used this API
    in the last 90 days (ADR 0017): employee ids, as tokens name them. Each is written to when their
    directory record has an address, they are active, and they did not turn the report off."""

    model_config = ConfigDict(extra="forbid")

    employee_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=MAX_REPORT_RECIPIENTS)


class TenantLanguageBody(BaseModel):
    """The language of the messages of people who chose none."""

    model_config = ConfigDict(extra="forbid")

    language: Language


class TemplateOverrideIn(BaseModel):
    """A tenant's wording of one message in one language, all three parts (a PUT replaces the
    override): Jinja2 sources, rendered in a sandbox (the HTML part autoescaped) with the message's
    variables only; null or empty is the built-in part. A source that does not compile or render is
    a 422 naming the part and the line."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(max_length=MAX_TEMPLATE_SOURCE)
    text: str | None = Field(max_length=MAX_TEMPLATE_SOURCE)
    html: str | None = Field(max_length=MAX_TEMPLATE_SOURCE)


class TemplateOverrideOut(BaseModel):
    """The tenant's override; a null part (all of them, and ``updated_at``, when there is none) is
    the built-in template's."""

    name: TemplateName
    language: Language
    subject: str | None
    text: str | None
    html: str | None
    updated_at: datetime | None
