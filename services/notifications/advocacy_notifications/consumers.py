"""Events in -> use cases. Each group's batch is one transaction: the copies first (who, what,
settings), then what the events tell people (features/notices.py), so a notice sees the batch's
copies (an erased or deactivated person in the same batch is told nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_common.events import Envelope
from advocacy_notifications.features import chat, copies, notices


async def on_content(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Content's, sharing's and metrics' events: copies, then notices (approvals, coaching)."""
    await copies.apply_events(session, events)
    for env in events:
        await notices.on_event(session, env)


async def on_gamification(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Gamification's events: the team channels' announcements (badges), then notices by email
    (badges, challenges, rewards)."""
    await chat.apply_gamification(session, events)
    for env in events:
        await notices.on_event(session, env)


CONSUMERS = [
    ConsumerSpec(group_id="notifications", topics=(topics.CONTENT, topics.SHARES, topics.METRICS), handler=on_content),
    ConsumerSpec(group_id="notifications-gamification", topics=(topics.GAMIFICATION,), handler=on_gamification),
]
