"""Content use cases: load, apply the domain rules, save, add events to the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.auth import Principal
from advocacy_common.errors import NotFound
from advocacy_common.events import new_event
from advocacy_common.events.content import Audience, ContentPublished
from advocacy_common.outbox import add_event
from advocacy_common.pagination import PageParams, encode_cursor
from advocacy_content import domain
from advocacy_content.db import ContentItem
from advocacy_content.schemas import ContentCreate

SOURCE = "/advocacy/content"


def _now() -> datetime:
    return datetime.now(UTC)


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


async def create_content(session: AsyncSession, who: Principal, body: ContentCreate) -> ContentItem:
    now = _now()
    status = domain.initial_status(now, body.publish_at)
    item = ContentItem(
        id=str(uuid.uuid4()),
        tenant_id=who.tenant_id,
        title=body.title,
        url=body.url,
        slug=domain.slugify(body.title),
        body=body.body,
        tags=body.tags,
        captions={str(k): v for k, v in body.captions.items()},
        audience=body.audience.model_dump(),
        status=status,
        publish_at=body.publish_at,
        expires_at=body.expires_at,
        published_at=now if status == domain.Status.published else None,
        created_by=who.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    if status == domain.Status.published:
        await add_event(session, new_event(SOURCE, who.tenant_id, published_event(item), at=now))
    await session.flush()
    return item


async def get_content(session: AsyncSession, who: Principal, content_id: str) -> ContentItem:
    item = await session.get(ContentItem, content_id)
    if item is None or item.tenant_id != who.tenant_id:
        raise NotFound("content not found")
    if not who.is_admin and not domain.visible_on_board(item.status, item.expires_at, _now()):
        raise NotFound("content not found")
    return item


async def list_board(
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    *,
    status: str | None = None,
    tag: str | None = None,
    network: str | None = None,
    topic: str | None = None,
    q: str | None = None,
) -> tuple[list[ContentItem], str | None]:
    """The board: for an employee, published unexpired items whose audience matches; admins see all."""
    now = _now()
    stmt = select(ContentItem).where(ContentItem.tenant_id == who.tenant_id)
    if who.is_admin:
        if status:
            stmt = stmt.where(ContentItem.status == status)
    else:
        stmt = stmt.where(
            ContentItem.status == domain.Status.published,
            sa.or_(col(ContentItem.expires_at).is_(None), col(ContentItem.expires_at) > now),
        )
        teams = ContentItem.audience["teams"]
        untargeted = sa.func.coalesce(sa.func.jsonb_array_length(teams), 0) == 0
        stmt = stmt.where(sa.or_(untargeted, teams.contains([who.team])) if who.team else untargeted)
    if tag:
        stmt = stmt.where(col(ContentItem.tags).contains([tag]))
    if network:
        stmt = stmt.where(ContentItem.captions.has_key(network))  # type: ignore[attr-defined]
    if topic:
        stmt = stmt.where(ContentItem.audience["topics"].contains([topic]))
    if q:
        stmt = stmt.where(col(ContentItem.search).op("@@")(sa.func.websearch_to_tsquery("simple", q)))
    order_ts = sa.func.coalesce(col(ContentItem.published_at), col(ContentItem.created_at))
    if page.cursor:
        ts, cid = datetime.fromisoformat(page.cursor[0]), page.cursor[1]
        stmt = stmt.where(sa.tuple_(order_ts, col(ContentItem.id)) < sa.tuple_(sa.literal(ts), sa.literal(cid)))
    stmt = stmt.order_by(order_ts.desc(), col(ContentItem.id).desc()).limit(page.limit + 1)
    items = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(items) > page.limit:
        items = items[: page.limit]
        last = items[-1]
        next_cursor = encode_cursor([(last.published_at or last.created_at).isoformat(), last.id])
    return items, next_cursor
