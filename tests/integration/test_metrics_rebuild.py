"""Issue 6 acceptance: ``advocacy metrics rebuild`` equals live, row for row, after 100,000 events;
erasure leaves aggregates equal to a rebuild without the person."""

from __future__ import annotations

import asyncio
import gc
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberErased, MemberUpdated, TenantSettingsUpdated
from advocacy_common.events.sharing import (
    AccountUpdated,
    ShareClicked,
    ShareCreated,
    Verdict,
)
from advocacy_common.migrations import upgrade
from advocacy_common.money import Money
from advocacy_common.tenant import TenantSettings
from advocacy_metrics.cli import run_rebuild
from advocacy_metrics.db import AGGREGATE_TABLES, CLICK_FACTS, SHARE_FACTS
from advocacy_metrics.features import facts
from advocacy_metrics.features.rebuild import snapshot
from tests.support.clicks import converted, invalidated

START = datetime(2025, 6, 1, tzinfo=UTC)
SHARING = "/advocacy/sharing"


@pytest.fixture
async def metrics_url(new_database: str) -> str:
    await asyncio.to_thread(upgrade, "advocacy_metrics", new_database)
    return new_database


@pytest.fixture
async def engine(metrics_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(metrics_url, pool_size=2)
    yield eng
    await eng.dispose()


def programme(tenant: str, n_events: int, rng: random.Random, *, skewed: bool = False) -> list[Envelope[Any]]:
    """About ``n_events`` events over a year: shares, clicks of every verdict with dimensions,
    invalidations, conversions in two currencies, accounts, membership; some out of order.
    ``skewed``: a few people share most (as in a real programme), instead of everyone alike."""
    out: list[Envelope[Any]] = [
        new_event(
            "/advocacy/content",
            tenant,
            TenantSettingsUpdated(settings=TenantSettings(time_zone="Europe/Berlin"), updated_at=START),
        )
    ]
    employees = [f"e{i}" for i in range(400)]
    team_of = {e: f"team{i % 12}" if i % 9 else None for i, e in enumerate(employees)}
    n_shares = n_events // 20
    shares = []
    for i in range(n_shares):
        e = employees[int(len(employees) * rng.random() ** 2)] if skewed else rng.choice(employees)
        s = ShareCreated(
            share_id=f"{tenant}-s{i}",
            employee_id=e,
            content_id=f"c{rng.randrange(60)}",
            network=rng.choice(["linkedin", "x", "facebook"]),
            code=f"k{i}",
            created_at=START + timedelta(minutes=rng.randrange(365 * 24 * 60)),
            team=team_of[e],
            audience_size=rng.randrange(5000),
        )
        shares.append(s)
        out.append(new_event(SHARING, tenant, s))
    verdicts = [Verdict.counted] * 6 + [Verdict.bot, Verdict.duplicate, Verdict.self, Verdict.rate_limited]
    clicks = []
    n_clicks = n_events - len(out) - n_events // 10
    for i in range(n_clicks):
        s = rng.choice(shares)
        c = ShareClicked(
            click_id=f"{tenant}-k{i}",
            share_id=s.share_id,
            code=s.code,
            employee_id=s.employee_id,
            content_id=s.content_id,
            network=s.network,
            team=s.team,
            clicked_at=s.created_at + timedelta(minutes=rng.randrange(10 * 24 * 60)),
            verdict=(verdict := rng.choice(verdicts)),
            reason=rng.choice(["ua_not_browser", "known_crawler:isbot", "scanner_timing"])
            if verdict == Verdict.bot
            else None,
            country=rng.choice([None, "DE", "FR", "US", "GB"]),
            device=rng.choice([None, "mobile", "desktop", "tablet"]),
            browser="Firefox",
            referrer_domain=rng.choice([None, "linkedin.com", "t.co", "news.example"]),
        )
        clicks.append(c)
        out.append(new_event(SHARING, tenant, c))
    rest: list[Any] = []
    for c in rng.sample(clicks, n_events // 40):
        rest.append(invalidated(c, reason="fraud", at=c.clicked_at + timedelta(days=2)))
    for i, c in enumerate(rng.sample(clicks, n_events // 20)):
        rest.append(
            converted(
                c,
                conversion_id=f"{tenant}-v{i}",
                kind=rng.choice(["signup", "lead", "sale"]),
                value=rng.choice(
                    [None, Money(amount=Decimal(rng.randrange(1, 50_000)) / 100, currency=rng.choice(["EUR", "USD"]))]
                ),
                external_id=f"x{i}",
                occurred_at=c.clicked_at + timedelta(hours=rng.randrange(1, 200)),
            )
        )
    while len(out) + len(rest) < n_events:
        e = rng.choice(employees)
        at = START + timedelta(minutes=rng.randrange(365 * 24 * 60))
        if rng.random() < 0.5:
            rest.append(
                AccountUpdated(employee_id=e, network="linkedin", audience_size=rng.randrange(9000), updated_at=at)
            )
        else:
            rest.append(MemberUpdated(employee_id=e, enrolled=rng.random() < 0.8, updated_at=at))
    out += [new_event(SHARING, tenant, p) for p in rest]
    # late and early arrivals: a third of the stream is shuffled (conversions before clicks, ...)
    tail = out[len(out) * 2 // 3 :]
    rng.shuffle(tail)
    head = out[: len(out) * 2 // 3]
    mixed = head[:1] + rng.sample(head[1:] + tail, len(head) - 1 + len(tail))
    return mixed


async def feed(engine: AsyncEngine, events: list[Envelope[Any]], batch: int = 2000) -> None:
    """The consumer's handler over the events in batches, one transaction each."""
    sessionmaker = make_sessionmaker(engine)
    gc.freeze()  # the 100k generated events live throughout: keep the collector from rescanning them
    try:
        for i in range(0, len(events), batch):
            async with sessionmaker() as session, session.begin():
                await facts.record_events(session, events[i : i + batch])
    finally:
        gc.unfreeze()


async def test_rebuild_equals_live_row_for_row_after_100k_events(engine: AsyncEngine, metrics_url: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    rng = random.Random(6)
    events = programme(tenant, 100_000, rng)
    assert len(events) == 100_000
    started = time.monotonic()
    # and 2% redelivered under new ids: facts dedupe by their own id
    again = [Envelope(e.source, e.tenant_id, e.data) for e in rng.sample(events, 2000)]
    await feed(engine, events + again)
    live_seconds = time.monotonic() - started
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        live = await snapshot(session, tenant)
        n_clicks = await session.scalar(
            sa.select(sa.func.count()).select_from(CLICK_FACTS).where(CLICK_FACTS.c.tenant_id == tenant)
        )
    assert sum(len(rows) for rows in live.values()) > 10_000

    started = time.monotonic()
    changed = await run_rebuild(metrics_url, [tenant], False, False)  # the CLI's code path, committed
    rebuild_seconds = time.monotonic() - started
    assert changed == {tenant: {}}
    async with sessionmaker() as session:
        rebuilt = await snapshot(session, tenant)
    for table in AGGREGATE_TABLES:
        assert rebuilt[table.name] == live[table.name], table.name
    # the counters add up to the facts: every click counted once in every roll-up (stats rows keep
    # their counters first: shares, reach, then the six verdicts)
    fine_clicks = sum(sum(r[2:8]) for r in live["daily_stats"])
    team_clicks = sum(sum(r[2:8]) for r in live["team_daily_stats"])
    assert fine_clicks == team_clicks == n_clicks
    print(f"live {live_seconds:.1f}s, rebuild {rebuild_seconds:.1f}s")


async def test_erasure_leaves_what_a_rebuild_without_the_person_gives(engine: AsyncEngine) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    rng = random.Random(7)
    events = programme(tenant, 5_000, rng)
    await feed(engine, events, batch=500)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session:
        victim = await session.scalar(
            sa.select(SHARE_FACTS.c.employee_id)
            .where(SHARE_FACTS.c.tenant_id == tenant)
            .group_by(SHARE_FACTS.c.employee_id)
            .order_by(sa.func.count().desc(), SHARE_FACTS.c.employee_id)
            .limit(1)
        )
    assert victim is not None
    erased = new_event(
        "/advocacy/content", tenant, MemberErased(employee_id=victim, erased_at=START + timedelta(days=400))
    )
    # a late click of theirs after the erasure is dropped, not resurrected
    late = next(e for e in events if isinstance(e.data, ShareClicked) and e.data.employee_id == victim)
    await feed(engine, [erased, Envelope(late.source, tenant, late.data.model_copy(update={"click_id": "late-1"}))])
    async with sessionmaker() as session, session.begin():
        after = await snapshot(session, tenant)
        for table in AGGREGATE_TABLES:
            if "employee_id" in table.c:
                n = await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.tenant_id == tenant, table.c.employee_id == victim)
                )
                assert n == 0, table.name
        for table in (SHARE_FACTS, CLICK_FACTS):
            n = await session.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.employee_id == victim))
            assert n == 0
    changed = await run_rebuild(str(engine.url.render_as_string(hide_password=False)), [tenant], False, True)
    assert changed == {tenant: {}}
    async with sessionmaker() as session:
        assert await snapshot(session, tenant) == after
