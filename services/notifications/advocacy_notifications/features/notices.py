"""Per-event notices: a person hears, by email, that their suggestion was approved or rejected, a
coach replied to them, they earned a badge, a challenge started, ended or was won, a reward they
redeemed was handed over.

One way to queue one: :func:`notify` (one person) and :func:`notify_audience` (a page of the
tenant's people), both through :func:`recipients`, which keeps the rules every message obeys:

- the person is known, has an address, is active in the directory and enrolled in the programme
  (opt-out and deactivation stop everything; erasure left no copy to find), and their address did
  not bounce (the digest's and the nudge's rules: :func:`nudges.reachable`);
- the category is on for them on email: their own choice, else the tenant's default for it, else on
  (:func:`nudges.wants`, :func:`domain.frequency_of` in SQL; the unsubscribe link of every notice turns
  its category off).

A notice is one message row with a key (:func:`domain.notice_key`: the event's id and the person),
so a redelivered or re-published event queues nothing twice; :func:`advocacy_notifications.features.mail.queue`
writes it and holds it past the person's quiet hours. Events too old to be news (a replayed topic)
tell nobody (:func:`domain.is_news`).

Challenges: their start is told to the tenant's people by a scheduler pass once ``starts_at`` has
passed (:func:`compose_due`, the clock injected, a bounded page per pass, resumed where it stopped);
their end at finalisation, by the same pass: first each winner (``challenge.won``, from the
consumer: the person, or every member of a winning team) under the person's ``end`` key, then
everyone else under the same key, so a winner gets "you won" and nobody both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.db import table_of
from advocacy_common.events import Envelope
from advocacy_common.events.content import CoachingReplied, SuggestionApproved, SuggestionRejected
from advocacy_common.events.gamification import (
    BadgeEarned,
    ChallengeCreated,
    ChallengeFinalised,
    ChallengeWon,
    RewardFulfilled,
)
from advocacy_notifications import domain
from advocacy_notifications.adapters import links, templates
from advocacy_notifications.adapters.links import LINK_KEY
from advocacy_notifications.db import ChallengeCopy, Member
from advocacy_notifications.domain import Category
from advocacy_notifications.features import digests, mail, nudges, quiet_hours, wording
from advocacy_notifications.features.quiet_hours import TenantQuiet
from advocacy_notifications.features.wording import Wording

_CHALLENGES = table_of(ChallengeCopy)

# A reason or a title quoted in a notice is cut to this (an admin's free text: 2,000 characters).
MAX_QUOTE = 500
# A winning team's members are told in pages of this many (one statement each).
TEAM_PAGE = 1000
# A scheduler pass looks at this many challenges at most, each way (starting, ending).
CHALLENGES_PER_PASS = 50


@dataclass(frozen=True, slots=True)
class Notice:
    """What to tell a person: its category (their preference), its template (``<template>.*.j2``),
    the template's context (besides ``name`` and ``unsubscribe_url``, which every notice gets) and
    the key that makes it once."""

    category: Category
    template: str
    dedupe_key: str
    context: dict[str, Any]


async def recipients(
    session: AsyncSession,
    tenant_id: str,
    category: Category,
    *,
    where: Sequence[sa.ColumnElement[bool]] = (),
    after: str | None = None,
    limit: int | None = None,
) -> list[Member]:
    """The people of the tenant (matching ``where``) who may be told about ``category`` by email
    now, by employee id (after ``after``, at most ``limit``)."""
    stmt = select(Member).where(Member.tenant_id == tenant_id, *nudges.reachable(), nudges.wants(category), *where)
    if after is not None:
        stmt = stmt.where(col(Member.employee_id) > after)
    stmt = stmt.order_by(col(Member.employee_id))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.scalars(stmt)).all())


@dataclass(frozen=True, slots=True)
class _Pass:
    """What every notice of a tenant needs, loaded once for a page of people."""

    base_url: str
    key: bytes
    quiet: TenantQuiet
    wording: Wording


async def _load(session: AsyncSession, tenant_id: str, base_url: str, people: Sequence[Member]) -> _Pass:
    ids = [m.employee_id for m in people]
    return _Pass(
        base_url=base_url,
        key=await LINK_KEY.get(session),
        quiet=await quiet_hours.load(session, tenant_id, ids),
        wording=await wording.load(session, tenant_id, ids),
    )


async def _queue(session: AsyncSession, m: Member, notice: Notice, p: _Pass, now: datetime) -> bool:
    assert m.email is not None  # recipients() has only people with an address
    unsubscribe = digests.unsubscribe_url(p.base_url, p.key, m.tenant_id, m.employee_id, notice.category)
    context = {**notice.context, "name": m.name, "unsubscribe_url": unsubscribe, "time_zone": p.quiet.zone}
    language = p.wording.language(m.employee_id)
    if "badge_key" in context:
        title = {"key": context["badge_key"], "fallback": context["badge"]}
        context["badge"] = templates.words("badge_title", title, language)
    parts = templates.render(notice.template, context, language, p.wording.override(notice.template, language))
    return await mail.queue(
        session,
        tenant_id=m.tenant_id,
        employee_id=m.employee_id,
        dedupe_key=notice.dedupe_key,
        category=notice.category.value,
        recipient=m.email,
        subject=parts.subject,
        text=parts.text,
        html=parts.html,
        headers=mail.unsubscribe_headers(unsubscribe),
        now=now,
        quiet=p.quiet,
    )


async def notify(session: AsyncSession, tenant_id: str, employee_id: str, notice: Notice, *, now: datetime) -> bool:
    """Queue ``notice`` for one person, unless they may not be told (see the module's rules) or it
    was queued before. True when a message was queued."""
    people = await recipients(session, tenant_id, notice.category, where=[col(Member.employee_id) == employee_id])
    if not people:
        return False
    return await _queue(
        session, people[0], notice, await _load(session, tenant_id, links.PUBLIC_BASE.get(), people), now
    )


async def notify_audience(
    session: AsyncSession,
    tenant_id: str,
    category: Category,
    notice_for: Callable[[Member], Notice],
    *,
    now: datetime,
    base_url: str,
    where: Sequence[sa.ColumnElement[bool]] = (),
    after: str | None = None,
    limit: int,
) -> Page:
    """Queue a notice (``notice_for(person)``) for each of a page of at most ``limit`` of the
    tenant's people after ``after`` who may be told (:func:`recipients`)."""
    people = await recipients(session, tenant_id, category, where=where, after=after, limit=limit)
    if not people:
        return Page(0, 0, after, True)
    p = await _load(session, tenant_id, base_url, people)
    queued = 0
    for m in people:
        queued += await _queue(session, m, notice_for(m), p, now)
    return Page(queued, len(people), people[-1].employee_id, len(people) < limit)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of an audience: messages queued, people looked at, the last one, whether it was everyone."""

    queued: int
    looked: int
    after: str | None
    done: bool


def _quote(text: str | None) -> str | None:
    return text[:MAX_QUOTE] if text else None


# -- the events ------------------------------------------------------------------------------------


async def on_event(session: AsyncSession, env: Envelope[Any], now: datetime | None = None) -> None:
    """What ``env`` tells people (events that tell nobody are ignored). Called by the consumer after
    the event's copies are applied (consumers.py)."""
    d = env.data
    now = now or datetime.now(UTC)
    if isinstance(d, ChallengeCreated | ChallengeFinalised):
        await apply_challenge(session, env)
        return
    if not domain.is_news(env.time, now):
        return
    t = env.tenant_id
    if isinstance(d, SuggestionApproved | SuggestionRejected):
        rejected = isinstance(d, SuggestionRejected)
        context = {"title": _quote(d.title), "reason": _quote(d.reason) if isinstance(d, SuggestionRejected) else None}
        template = "suggestion_rejected" if rejected else "suggestion_approved"
        notice = Notice(Category.suggestions, template, domain.notice_key(env.id, d.proposer_id), context)
        await notify(session, t, d.proposer_id, notice, now=now)
    elif isinstance(d, CoachingReplied):
        notice = Notice(Category.coaching, "coaching_replied", domain.notice_key(env.id, d.requester_id), {})
        await notify(session, t, d.requester_id, notice, now=now)
    elif isinstance(d, BadgeEarned):
        # the title in the reader's language (:func:`_queue`): gamification's badges have German ones
        context = {"badge": domain.badge_title(d.badge), "badge_key": d.badge}
        notice = Notice(Category.badges, "badge_earned", domain.notice_key(env.id, d.employee_id), context)
        await notify(session, t, d.employee_id, notice, now=now)
    elif isinstance(d, RewardFulfilled):
        context = {"reward": _quote(d.reward_name)}  # none: the template words it in the reader's language
        notice = Notice(Category.rewards, "reward_fulfilled", domain.notice_key(env.id, d.employee_id), context)
        await notify(session, t, d.employee_id, notice, now=now)
    elif isinstance(d, ChallengeWon):
        await _won(session, env, now)


def _won_notice(d: ChallengeWon, employee_id: str) -> Notice:
    context = {"challenge": _quote(d.name), "rank": d.rank, "points": d.points, "team": d.team}
    return Notice(
        Category.challenges, "challenge_won", domain.challenge_key("end", d.challenge_id, employee_id), context
    )


async def _won(session: AsyncSession, env: Envelope[ChallengeWon], now: datetime) -> None:
    """A winner hears first (the end pass tells everyone else later, under the same keys). A team's
    members are told page by page: a team is at most a directory group."""
    d = env.data
    if d.employee_id is not None:
        await notify(session, env.tenant_id, d.employee_id, _won_notice(d, d.employee_id), now=now)
    elif d.team is not None:
        page = Page(0, 0, None, False)
        while not page.done:
            page = await notify_audience(
                session,
                env.tenant_id,
                Category.challenges,
                lambda m: _won_notice(d, m.employee_id),
                now=now,
                base_url=links.PUBLIC_BASE.get(),
                where=[col(Member.team) == d.team],
                after=page.after,
                limit=TEAM_PAGE,
            )


async def apply_challenge(session: AsyncSession, env: Envelope[Any]) -> None:
    """Keep the challenge (its start is announced by :func:`compose_due`), or mark it finalised (its
    end likewise). A finalisation before its creation (a lost event) keeps what it knows."""
    d = env.data
    if isinstance(d, ChallengeCreated):
        stmt = pg_insert(_CHALLENGES).values(
            tenant_id=env.tenant_id,
            challenge_id=d.challenge_id,
            name=d.name,
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            goal_kind=d.goal_kind,
            start_done=False,
            end_done=False,
        )
        await session.execute(stmt.on_conflict_do_nothing())
    elif isinstance(d, ChallengeFinalised):
        stmt = pg_insert(_CHALLENGES).values(
            tenant_id=env.tenant_id,
            challenge_id=d.challenge_id,
            name=d.name,
            starts_at=d.ends_at,
            ends_at=d.ends_at,
            goal_kind=d.goal_kind,
            finalised_at=d.finalised_at,
            start_done=True,  # never announce the start of what is over
            end_done=False,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "challenge_id"],
                set_={"finalised_at": stmt.excluded.finalised_at},
                where=_CHALLENGES.c.finalised_at.is_(None),
            )
        )


# -- the scheduler pass ----------------------------------------------------------------------------


async def compose_due(session: AsyncSession, now: datetime, *, base_url: str, limit: int) -> int:
    """Announce challenges that started, and those finalised, each to a page of its audience: at
    most ``limit`` people looked at in all. Returns how many messages were queued. Each challenge
    remembers the last person told, so the next pass goes on from there; a challenge's row is
    locked (``SKIP LOCKED``), so two workers never announce the same one at once."""
    budget = limit
    queued = 0
    for moment in ("start", "end"):
        for c in await _due(session, moment, now):
            if budget <= 0:
                return queued
            page = await _announce(session, c, moment, now, base_url=base_url, limit=budget)
            queued += page.queued
            budget -= max(page.looked, 1)
    return queued


async def _due(session: AsyncSession, moment: str, now: datetime) -> Sequence[ChallengeCopy]:
    c = _CHALLENGES.c
    if moment == "start":
        where, order = [c.start_done.is_(False), c.starts_at <= now], c.starts_at
    else:
        where, order = [c.end_done.is_(False), c.finalised_at.is_not(None)], c.finalised_at
    stmt = select(ChallengeCopy).where(*where).order_by(order).limit(CHALLENGES_PER_PASS)
    return (await session.scalars(stmt.with_for_update(skip_locked=True))).all()


async def _announce(
    session: AsyncSession, c: ChallengeCopy, moment: str, now: datetime, *, base_url: str, limit: int
) -> Page:
    """One page of a challenge's start (``moment`` "start") or end ("end") announcement; the
    challenge's row records how far it got. What is no longer news is marked done, untold."""
    start = moment == "start"
    if start:
        news = c.finalised_at is None and domain.announce_start(c.starts_at, c.ends_at, now)
    else:
        news = c.finalised_at is not None and domain.is_news(c.finalised_at, now)
    if not news:
        page = Page(0, 0, None, True)
    else:
        context = {"challenge": c.name, "ends_at": c.ends_at, "goal_kind": c.goal_kind}
        template = "challenge_started" if start else "challenge_ended"

        def notice_for(m: Member) -> Notice:
            key = domain.challenge_key(moment, c.challenge_id, m.employee_id)
            return Notice(Category.challenges, template, key, context)

        after = c.start_after if start else c.end_after
        page = await notify_audience(
            session, c.tenant_id, Category.challenges, notice_for, now=now, base_url=base_url, after=after, limit=limit
        )
    # the cursor is an employee id: kept only while the announcement is under way (minutes)
    after = None if page.done else page.after
    if start:
        c.start_after, c.start_done = after, page.done
    else:
        c.end_after, c.end_done = after, page.done
    return page
