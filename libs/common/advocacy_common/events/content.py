"""Events the content service publishes (topic ``advocacy.content``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from advocacy_common import topics
from advocacy_common.events.base import EventData, register


class Audience(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    teams: list[str] = []
    programme_roles: list[str] = []
    topics: list[str] = []


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
