"""Sharing use cases: create a tracked link (share), apply content events, judge raw clicks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.auth import Principal
from advocacy_common.errors import NotFound
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import ContentPublished
from advocacy_common.events.sharing import ClickReceived, ShareClicked, ShareCreated
from advocacy_common.networks import Network
from advocacy_common.outbox import add_event, add_events
from advocacy_sharing import domain
from advocacy_sharing.db import Click, ContentCopy, Share
from advocacy_sharing.schemas import ShareCreate

SOURCE = "/advocacy/sharing"


async def create_share(session: AsyncSession, who: Principal, body: ShareCreate) -> tuple[Share, bool]:
    """Returns (share, created). The same content on the same network again returns the existing one."""
    content = await session.get(ContentCopy, (who.tenant_id, body.content_id))
    now = datetime.now(UTC)
    if content is None or content.status != "published" or (content.expires_at and content.expires_at <= now):
        raise NotFound("content not found or not published")
    existing = (
        await session.scalars(
            select(Share).where(
                Share.tenant_id == who.tenant_id,
                Share.employee_id == who.sub,
                Share.content_id == body.content_id,
                Share.network == body.network.value,
            )
        )
    ).first()
    if existing is not None:
        return existing, False
    share = Share(
        id=str(uuid.uuid4()),
        tenant_id=who.tenant_id,
        code=domain.new_code(),
        employee_id=who.sub,
        employee_name=who.name,
        team=who.team,
        content_id=body.content_id,
        network=body.network.value,
        message=body.message,
        created_at=now,
    )
    inserted = await session.execute(
        pg_insert(Share)
        .values(**share.model_dump())
        .on_conflict_do_nothing(constraint="uq_share_per_network")
        .returning(col(Share.id))
    )
    if inserted.first() is None:  # a concurrent request created it first
        again = (
            await session.scalars(
                select(Share).where(
                    Share.tenant_id == who.tenant_id,
                    Share.employee_id == who.sub,
                    Share.content_id == body.content_id,
                    Share.network == body.network.value,
                )
            )
        ).one()
        return again, False
    event = ShareCreated(
        share_id=share.id,
        employee_id=who.sub,
        content_id=share.content_id,
        network=share.network,
        code=share.code,
        created_at=now,
        employee_name=who.name,
        team=who.team,
    )
    await add_event(session, new_event(SOURCE, who.tenant_id, event, at=now))
    return share, True


def network_of(share: Share) -> Network:
    return Network(share.network)


async def apply_content_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    for env in events:
        data = env.data
        if isinstance(data, ContentPublished):
            values = {
                "tenant_id": env.tenant_id,
                "content_id": data.content_id,
                "title": data.title,
                "url": data.url,
                "slug": data.slug,
                "status": "published",
                "expires_at": data.expires_at,
                "updated_at": env.time,
            }
            stmt = pg_insert(ContentCopy).values(**values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "content_id"],
                    set_={k: stmt.excluded[k] for k in values if k not in ("tenant_id", "content_id")},
                )
            )


async def judge_clicks(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Decide each raw click's verdict where the link's history lives; journal it; emit share.clicked."""
    raw = [e for e in events if isinstance(e.data, ClickReceived)]
    if not raw:
        return
    codes = {e.data.code for e in raw}
    shares = {s.code: s for s in (await session.scalars(select(Share).where(col(Share.code).in_(codes)))).all()}
    rows: list[dict[str, Any]] = []
    out: list[Envelope[ShareClicked]] = []
    for env in raw:
        click: ClickReceived = env.data
        share = shares.get(click.code)
        if share is None:
            continue  # a link that never existed here; nothing to credit
        verdict = domain.decide_verdict(click.edge_verdict, received_at=click.received_at)
        rows.append(
            {
                "id": click.click_id,
                "tenant_id": env.tenant_id,
                "code": click.code,
                "share_id": share.id,
                "employee_id": share.employee_id,
                "content_id": share.content_id,
                "network": share.network,
                "received_at": click.received_at,
                "visitor": click.visitor,
                "verdict": verdict.value,
                "user_agent": click.user_agent,
            }
        )
        if share.employee_id is not None:
            out.append(
                new_event(
                    SOURCE,
                    env.tenant_id,
                    ShareClicked(
                        click_id=click.click_id,
                        share_id=share.id,
                        code=click.code,
                        content_id=share.content_id,
                        employee_id=share.employee_id,
                        team=share.team,
                        network=share.network,
                        clicked_at=click.received_at,
                        verdict=verdict,
                    ),
                    at=click.received_at,
                    id=f"clicked-{click.click_id}",
                )
            )
    if rows:
        inserted = await session.execute(
            pg_insert(Click).values(rows).on_conflict_do_nothing().returning(col(Click.id))
        )
        new_ids = {r[0] for r in inserted.all()}
        await add_events(session, [e for e in out if e.data.click_id in new_ids])
