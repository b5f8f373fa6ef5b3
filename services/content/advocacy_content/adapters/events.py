"""The events this service emits: how they are built from its rows, and how they reach the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.errors import Unprocessable
from advocacy_common.events import EventData, new_event
from advocacy_common.events.content import Audience, ContentPublished, ContentUpdated
from advocacy_common.outbox import add_event
from advocacy_common.testclock import FileClock
from advocacy_content import domain
from advocacy_content.db import ContentItem
from advocacy_content.settings import SOURCE

#: Where content's "now" comes from: the real time, or in dev mode a test's clock file
#: (``CONTENT_CLOCK_FILE``, advocacy_common.testclock), set by create_app.
_clock: Callable[[], datetime] = FileClock(None)


def use_clock(clock: Callable[[], datetime]) -> None:
    global _clock
    _clock = clock


def now() -> datetime:
    return _clock()


def rule_error(e: domain.RuleError) -> Unprocessable:
    return Unprocessable.field(e.field, e.message)


async def emit(session: AsyncSession, tenant_id: str, data: EventData, at: datetime) -> None:
    """Write the event to the outbox in the caller's transaction."""
    await add_event(session, new_event(SOURCE, tenant_id, data, at=at))


def published_event(item: ContentItem) -> ContentPublished:
    return ContentPublished(
        content_id=item.id,
        title=item.title,
        url=item.url,
        slug=item.slug,
        tags=item.tags,
        captions=item.captions,
        audience=Audience.model_validate(item.audience),
        published_at=item.published_at or item.created_at,
        expires_at=item.expires_at,
    )


def updated_event(item: ContentItem) -> ContentUpdated:
    return ContentUpdated(
        content_id=item.id,
        title=item.title,
        url=item.url,
        slug=item.slug,
        tags=item.tags,
        captions=item.captions,
        audience=Audience.model_validate(item.audience),
        status=item.status,
        expires_at=item.expires_at,
        updated_at=item.updated_at,
    )
