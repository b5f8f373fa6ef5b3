"""Badges: counts of shares, counted clicks, conversions and the weekly sharing streak, kept from
the ledger as it grows; a badge is earned once, when its count reaches the tenant's threshold."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import insert_rows, rows_param, rows_select
from advocacy_common.db import one_snapshot
from advocacy_common.events import new_event
from advocacy_common.events.gamification import BadgeEarned
from advocacy_common.outbox import add_events
from advocacy_gamification import domain
from advocacy_gamification.adapters.context import TenantContext
from advocacy_gamification.adapters.ledger import Posted
from advocacy_gamification.adapters.sql import people_in
from advocacy_gamification.db import BADGES, STATS
from advocacy_gamification.domain.rules import BadgeThresholds
from advocacy_gamification.settings import SOURCE

Key = tuple[str, str]

_STAT_COLUMNS = ("tenant_id", "employee_id", "shares", "clicks", "conversions")
# A count never goes below zero: an update clamps; a new row takes the delta as it is, and the rare
# new row with more reversed clicks than clicks is clamped by _CLAMP_CLICKS (it is locked by then).
_MOVE_STATS = sa.text(
    "INSERT INTO member_stats AS t (tenant_id, employee_id, shares, clicks, conversions, streak_weeks) "  # noqa: S608
    "SELECT k.tenant_id, k.employee_id, k.shares, k.clicks, k.conversions, 0 "
    f"FROM ({rows_select(STATS, _STAT_COLUMNS)}) AS k "
    "ON CONFLICT (tenant_id, employee_id) DO UPDATE SET shares = t.shares + excluded.shares, "
    "clicks = greatest(0, t.clicks + excluded.clicks), conversions = t.conversions + excluded.conversions "
    "RETURNING t.tenant_id, t.employee_id, t.shares, t.clicks, t.conversions, t.streak_weeks, t.last_share_week"
)
_CLAMP_CLICKS = sa.text(
    "UPDATE member_stats AS t SET clicks = 0 "  # noqa: S608
    f"FROM ({rows_select(STATS, ('tenant_id', 'employee_id'))}) AS k "
    "WHERE t.tenant_id = k.tenant_id AND t.employee_id = k.employee_id AND t.clicks < 0"
)
_STREAK_COLUMNS = ("tenant_id", "employee_id", "streak_weeks", "last_share_week")
_SET_STREAKS = sa.text(
    "UPDATE member_stats AS t SET streak_weeks = k.streak_weeks, last_share_week = k.last_share_week "  # noqa: S608
    f"FROM ({rows_select(STATS, _STREAK_COLUMNS)}) AS k "
    "WHERE t.tenant_id = k.tenant_id AND t.employee_id = k.employee_id"
)
_BADGE_COLUMNS = ("tenant_id", "employee_id", "badge", "earned_at")
_ADD_BADGES = insert_rows(
    BADGES, _BADGE_COLUMNS, "ON CONFLICT DO NOTHING RETURNING t.tenant_id, t.employee_id, t.badge"
)


@dataclass(frozen=True, slots=True)
class BadgeInfo:
    badge: str
    name: str
    counts: str  # the stat compared with the threshold
    description: str


CATALOGUE: tuple[BadgeInfo, ...] = (
    BadgeInfo("first_share", "First share", "shares", "Shared content {n} time(s)"),
    BadgeInfo("share_milestone", "Regular sharer", "shares", "Shared content {n} times"),
    BadgeInfo("click_milestone", "Crowd puller", "clicks", "{n} counted clicks on your links"),
    BadgeInfo("first_conversion", "First conversion", "conversions", "{n} conversion(s) from your links"),
    BadgeInfo("sharing_streak", "On a roll", "streak_weeks", "Shared in {n} consecutive weeks"),
)


@dataclass
class Stats:
    shares: int = 0
    clicks: int = 0
    conversions: int = 0
    streak_weeks: int = 0
    last_share_week: date | None = None


def next_streak(streak: int, last_week: date | None, week: date) -> tuple[int, date | None]:
    """The streak after a share in ``week`` (the first day of the tenant's week)."""
    if last_week is None:
        return 1, week
    if week <= last_week:  # the same week, or a late event from an earlier one
        return streak, last_week
    if week - last_week == timedelta(days=7):
        return streak + 1, week
    return 1, week


def earned(thresholds: BadgeThresholds, stats: Stats) -> set[str]:
    out = set()
    for b in CATALOGUE:
        n = getattr(thresholds, b.badge)
        if n is not None and getattr(stats, b.counts) >= n:
            out.add(b.badge)
    return out


@dataclass
class _Delta:
    shares: int = 0
    clicks: int = 0
    conversions: int = 0
    share_weeks: set[date] = field(default_factory=set)


async def record_activity(session: AsyncSession, posted: Sequence[Posted], contexts: dict[str, TenantContext]) -> None:
    """Move the badge counts by the entries just posted, and award the badges now reached."""
    deltas: dict[Key, _Delta] = defaultdict(_Delta)
    for p in posted:
        e = p.entry
        k = (e.tenant_id, e.employee_id)
        if e.entry_type == "award":
            if e.action == "share":
                deltas[k].shares += 1
                ctx = contexts[e.tenant_id]
                week = domain.window_start(
                    "week", domain.local_date(e.occurred_at, ctx.settings.zone), ctx.week_starts_on
                )
                deltas[k].share_weeks.add(week)
            elif e.action == "click":
                deltas[k].clicks += 1
            elif e.action == "conversion":
                deltas[k].conversions += 1
        elif e.entry_type == "reversal" and e.action == "click":
            deltas[k].clicks -= 1
    if not deltas:
        return
    # One upsert moves the counts and returns the rows (locked until commit; sorted, so concurrent
    # batches for one person serialise without deadlocks); the streak, which needs the weeks in
    # order, is then set for the sharers among them.
    keys = sorted(deltas)
    rows = [(t, e, deltas[(t, e)].shares, deltas[(t, e)].clicks, deltas[(t, e)].conversions) for t, e in keys]
    result = await session.execute(_MOVE_STATS, rows_param(rows))
    stats: dict[Key, Stats] = {}
    streaks = []
    clamp = []
    for t, e, shares, clicks, conversions, streak_weeks, last_share_week in result.all():
        if clicks < 0:
            clamp.append((t, e))
        s = Stats(shares, max(0, clicks), conversions, streak_weeks, last_share_week)
        weeks = deltas[(t, e)].share_weeks
        if weeks:
            for week in sorted(weeks):
                s.streak_weeks, s.last_share_week = next_streak(s.streak_weeks, s.last_share_week, week)
            streaks.append((t, e, s.streak_weeks, s.last_share_week))
        stats[(t, e)] = s
    if clamp:
        await session.execute(_CLAMP_CLICKS, rows_param(sorted(clamp)))
    if streaks:
        await session.execute(_SET_STREAKS, rows_param(sorted(streaks)))
    await award_badges(session, stats, contexts)


async def award_badges(session: AsyncSession, stats: dict[Key, Stats], contexts: dict[str, TenantContext]) -> None:
    now = datetime.now(UTC)
    reached: list[tuple[str, str, str]] = []
    thresholds_of = {t: contexts[t].rules_at(now).body.badges for t in {t for t, _ in stats}}
    for (t, e), s in sorted(stats.items()):
        reached += [(t, e, b) for b in sorted(earned(thresholds_of[t], s))]
    if not reached:
        return
    have = {
        (r.tenant_id, r.employee_id, r.badge)
        for r in await session.execute(
            sa.select(BADGES.c.tenant_id, BADGES.c.employee_id, BADGES.c.badge).where(
                people_in(BADGES.c.tenant_id, BADGES.c.employee_id, {(t, e) for t, e, _ in reached})
            )
        )
    }
    want = [(t, e, b, now) for t, e, b in reached if (t, e, b) not in have]
    if not want:
        return
    res = await session.execute(_ADD_BADGES, rows_param(want))
    events = [new_event(SOURCE, t, BadgeEarned(employee_id=e, badge=b, earned_at=now)) for t, e, b in res.all()]
    await add_events(session, events)


# -- reading -----------------------------------------------------------------------------------------
NAMES = {b.badge: b.name for b in CATALOGUE}


async def catalogue(session: AsyncSession, tenant_id: str) -> dict[str, object]:
    """The badges this tenant awards now, with their thresholds (switched-off ones are left out)."""
    from advocacy_gamification.adapters.context import load_context

    thresholds = (await load_context(session, tenant_id)).rules_at(datetime.now(UTC)).body.badges
    items = []
    for b in CATALOGUE:
        n = getattr(thresholds, b.badge)
        if n is not None:
            items.append({"badge": b.badge, "name": b.name, "description": b.description.format(n=n), "threshold": n})
    return {"items": items, "next_cursor": None}


async def mine(session: AsyncSession, tenant_id: str, employee_id: str) -> dict[str, object]:
    """The caller's badges and the counts that earned them, from one snapshot: a consumer batch that
    commits between the two reads (a share that crosses a threshold and its badge) is in both or
    in neither."""
    await one_snapshot(session)
    rows = await session.execute(
        sa.select(BADGES.c.badge, BADGES.c.earned_at)
        .where(BADGES.c.tenant_id == tenant_id, BADGES.c.employee_id == employee_id)
        .order_by(BADGES.c.earned_at, BADGES.c.badge)
    )
    stats = (
        await session.execute(
            sa.select(STATS).where(STATS.c.tenant_id == tenant_id, STATS.c.employee_id == employee_id)
        )
    ).first()
    return {
        "items": [{"badge": r.badge, "name": NAMES.get(r.badge, r.badge), "earned_at": r.earned_at} for r in rows],
        "counts": {
            "shares": stats.shares if stats else 0,
            "clicks": stats.clicks if stats else 0,
            "conversions": stats.conversions if stats else 0,
            "streak_weeks": stats.streak_weeks if stats else 0,
        },
        "next_cursor": None,
    }
