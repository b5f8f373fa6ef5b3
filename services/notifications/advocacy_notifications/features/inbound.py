"""Events in -> use cases, one handler per consumer group. Each group's batch is one transaction:
the copies first (who, what, settings), then what the events tell people (features/notices.py), so
a notice sees the batch's copies (an erased or deactivated person in the same batch is told nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
