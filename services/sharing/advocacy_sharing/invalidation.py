"""Invalidation: an admin judges clicks fraudulent after the fact.

Matching clicks are marked (``invalidated_at``) in one UPDATE that only touches clicks not yet
invalidated, so the same click invalidated twice is taken back once; for each marked click that had
been counted, ``share.click_invalidated.v1`` goes out (its id derives from the click, so a
re-publish is deduplicated too). Points and metrics are taken back by their consumers.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from advocacy_common.events import new_event
from advocacy_common.events.sharing import ClickInvalidated, Verdict
from advocacy_common.outbox import add_events
from advocacy_sharing.db import Click, Share
from advocacy_sharing.schemas import InvalidateIn
from advocacy_sharing.settings import SOURCE


async def invalidate_clicks(
    session: AsyncSession, tenant_id: str, body: InvalidateIn, *, now: datetime | None = None
) -> int:
    """Returns how many counted clicks were taken back by this call."""
    now = now or datetime.now(UTC)
    conds = [col(Click.tenant_id) == tenant_id, col(Click.invalidated_at).is_(None)]
    if body.link_code:
        conds.append(col(Click.code) == body.link_code)
    if body.visitor:
        conds.append(col(Click.visitor) == body.visitor)
    if body.referrer_domain:
        conds.append(col(Click.referrer_domain) == body.referrer_domain.lower().removeprefix("www."))
    if body.from_:
        conds.append(col(Click.received_at) >= body.from_)
    if body.to:
        conds.append(col(Click.received_at) < body.to)
    marked = (
        await session.execute(
            sa.update(Click)
            .where(*conds)
            .values(invalidated_at=now, invalidation_reason=body.reason)
            .returning(
                col(Click.id),
                col(Click.share_id),
                col(Click.employee_id),
                col(Click.content_id),
                col(Click.network),
                col(Click.received_at),
                col(Click.verdict),
            )
        )
    ).all()
    counted = [r for r in marked if r.verdict == Verdict.counted.value]
    teams: dict[str, str | None] = {}
    if counted:
        share_ids = {r.share_id for r in counted}
        q = sa.select(col(Share.id), col(Share.team)).where(col(Share.id).in_(share_ids))
        teams = {sid: team for sid, team in (await session.execute(q)).all()}
    events = [
        new_event(
            SOURCE,
            tenant_id,
            ClickInvalidated(
                click_id=r.id,
                share_id=r.share_id,
                content_id=r.content_id,
                network=r.network,
                employee_id=r.employee_id,
                team=teams.get(r.share_id),
                clicked_at=r.received_at,
                reason=body.reason,
                invalidated_at=now,
            ),
            at=now,
            id=f"invalidated-{r.id}",
        )
        for r in counted
        if r.employee_id is not None  # an erased member's clicks credit no one, so nothing to take back
    ]
    await add_events(session, events)
    return len(counted)
