"""Adoption against the company directory (issue 17), through metrics' real consumer handler and
database: with a directory, the denominator is the people provisioned and active at the end of the
range, and the report gives the share of them who shared this week and this month; without one it
is the enrolled, as before. Erasure removes a person's directory records."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberErased, MemberProvisioned, MemberUpdated, TenantSettingsUpdated
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.person_export import export_person
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics.adapters import backfills, queries
from advocacy_metrics.adapters.ranges import DayRange
from advocacy_metrics.cli import run_backfill
from advocacy_metrics.db import ADOPTION_STEPS, SHARE_FACTS
from advocacy_metrics.features import reports
from advocacy_metrics.features.person_export import SECTIONS
from advocacy_metrics.features.rebuild import snapshot
from tests.integration.test_metrics_rebuild import START, engine, feed, metrics_url, programme  # noqa: F401

CONTENT = "/advocacy/content"
SHARING = "/advocacy/sharing"
MARCH = ("2026-03-01", "2026-03-31")  # 31 March is a Tuesday: "this week" is 30-31 March


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


def provisioned(tenant: str, emp: str, day: str, *, active: bool = True) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        MemberProvisioned(employee_id=emp, user_name=f"{emp}@example.com", active=active, updated_at=at(day)),
    )


def enrolled(tenant: str, emp: str, day: str) -> Envelope[Any]:
    return new_event(CONTENT, tenant, MemberUpdated(employee_id=emp, enrolled=True, updated_at=at(day)))


def shared(tenant: str, emp: str, day: str) -> Envelope[Any]:
    sid = uuid.uuid4().hex[:12]
    return new_event(
        SHARING,
        tenant,
        ShareCreated(share_id=sid, employee_id=emp, content_id="c1", network="linkedin", code=sid, created_at=at(day)),
    )


async def adoption(eng: AsyncEngine, tenant: str) -> dict[str, Any]:
    admin = Principal(sub="boss", tenant_id=tenant, roles=frozenset({"admin"}))
    async with make_sessionmaker(eng)() as session:
        return await reports.adoption_metrics(session, admin, *MARCH)


def figures(report: dict[str, Any]) -> tuple[Any, ...]:
    week, month = report["this_week"], report["this_month"]
    return (
        report["eligible"],
        report["eligible_source"],
        report["active_last_30_days"],
        report["active_rate"],
        (week["from"], week["sharers"], week["share_rate"]),
        (month["from"], month["sharers"], month["share_rate"]),
    )


async def test_the_denominator_is_the_active_directory_when_there_is_one(engine: AsyncEngine) -> None:  # noqa: F811
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await feed(
        engine,
        [
            *(provisioned(tenant, f"p{i}", "2026-02-01") for i in range(1, 6)),
            provisioned(tenant, "p5", "2026-03-20", active=False),  # deactivated before the range ends
            provisioned(tenant, "p6", "2026-04-02"),  # provisioned after it
            enrolled(tenant, "x", "2026-02-01"),  # enrolled but not in the directory: not eligible
            shared(tenant, "p1", "2026-03-02"),
            shared(tenant, "p2", "2026-03-30"),
            shared(tenant, "p3", "2026-03-10"),
            shared(tenant, "p5", "2026-03-31"),
            shared(tenant, "x", "2026-03-31"),
        ],
    )
    report = await adoption(engine, tenant)
    assert figures(report) == (
        4,
        "directory",
        3,
        3 / 4,
        ("2026-03-30", 1, 1 / 4),
        ("2026-03-01", 3, 3 / 4),
    )
    assert report["enrolled"] == 1 and report["sharers_last_30_days"] == 5

    await feed(engine, [new_event(CONTENT, tenant, MemberErased(employee_id="p1", erased_at=datetime.now(UTC)))])
    report = await adoption(engine, tenant)
    assert figures(report) == (3, "directory", 2, 2 / 3, ("2026-03-30", 1, 1 / 3), ("2026-03-01", 2, 2 / 3))
    async with make_sessionmaker(engine)() as session:
        p1 = await export_person(session, "metrics", SECTIONS, tenant, "p1")
        p5 = await export_person(session, "metrics", SECTIONS, tenant, "p5")
    assert p1.sections["directory"].items == []
    assert [i["active"] for i in p5.sections["directory"].items] == [False, True]


async def test_without_a_directory_the_denominator_is_the_enrolled(engine: AsyncEngine) -> None:  # noqa: F811
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await feed(
        engine,
        [
            enrolled(tenant, "a", "2026-02-01"),
            enrolled(tenant, "b", "2026-02-01"),
            shared(tenant, "a", "2026-03-31"),
            shared(tenant, "b", "2026-03-03"),
        ],
    )
    assert figures(await adoption(engine, tenant)) == (
        2,
        "enrolled",
        2,
        1.0,
        ("2026-03-30", 1, 1 / 2),
        ("2026-03-01", 2, 1.0),
    )


async def _counts_on(eng: AsyncEngine, tenant: str, days: list[date]) -> list[tuple[Any, Any]]:
    """(steps, scan) adoption counts on each of ``days``."""
    out = []
    async with make_sessionmaker(eng)() as session:
        settings = await load_tenant_settings(session, tenant)
        for day in days:
            args = (
                tenant,
                DayRange(day - timedelta(days=6), day),
                day,
                DayRange(day, day).instants(settings.zone)[1],
                settings.week_start_index,
            )
            out.append(
                (await queries.adoption_counts(session, *args), await queries.adoption_counts_scan(session, *args))
            )
    return out


async def test_adoption_steps_equal_the_scan(engine: AsyncEngine, metrics_url: str) -> None:  # noqa: F811
    """``adoption_steps`` (kept by the consumer batch by batch) gives the scan's counts on days all
    over a year (a hundred of them, at random: the scans cost): with and without a directory, events out of order, redelivered, an erasure, and
    after the week start moves from Monday to Sunday; a backfill fills the table from nothing."""
    rng = random.Random(20)
    with_dir, without = (f"t-{uuid.uuid4().hex[:10]}" for _ in range(2))
    events = programme(with_dir, 1500, rng)
    for i in range(0, 400, 3):  # a directory for about a third of the people, some deactivated later
        for _ in range(rng.randrange(1, 4)):
            day = (START + timedelta(days=rng.randrange(-20, 380))).date().isoformat()
            events.append(provisioned(with_dir, f"e{i}", day, active=rng.random() < 0.7))
    events += programme(without, 1500, rng)
    for i in range(0, 400, 2):  # half the people enrolled, some leaving later
        for _ in range(rng.randrange(1, 3)):
            at = START + timedelta(hours=rng.randrange(-500, 9000))
            events.append(
                new_event(
                    CONTENT, without, MemberUpdated(employee_id=f"e{i}", enrolled=rng.random() < 0.8, updated_at=at)
                )
            )
    events += [Envelope(e.source, e.tenant_id, e.data) for e in rng.sample(events, 150)]  # redelivered
    rng.shuffle(events)
    await feed(engine, events, batch=250)
    async with make_sessionmaker(engine)() as session:
        victim = await session.scalar(
            sa.select(SHARE_FACTS.c.employee_id)
            .where(SHARE_FACTS.c.tenant_id == with_dir)
            .group_by(SHARE_FACTS.c.employee_id)
            .order_by(sa.func.count().desc(), SHARE_FACTS.c.employee_id)
            .limit(1)
        )
    assert victim is not None
    await feed(engine, [new_event(CONTENT, with_dir, MemberErased(employee_id=victim, erased_at=datetime.now(UTC)))])
    year = [START.date() + timedelta(days=n) for n in range(-25, 385)]

    for tenant in (with_dir, without):
        pairs = await _counts_on(engine, tenant, sorted(rng.sample(year, 100)))
        assert [s for s, _ in pairs] == [scan for _, scan in pairs], tenant
        assert sum(s.active_members for s, _ in pairs) > 30  # the counts are not all zero
    assert any(s.from_directory for s, _ in pairs) is False  # ``without`` never had a directory

    sunday = TenantSettings(time_zone="Europe/Berlin", week_starts_on="sunday")
    await feed(engine, [new_event(CONTENT, with_dir, TenantSettingsUpdated(settings=sunday, updated_at=START))])
    pairs = await _counts_on(engine, with_dir, sorted(rng.sample(year, 100)))
    assert [s for s, _ in pairs] == [scan for _, scan in pairs]
    assert any(s.from_directory for s, _ in pairs)

    async with make_sessionmaker(engine)() as session, session.begin():
        live = await snapshot(session, with_dir)
        await session.execute(sa.delete(ADOPTION_STEPS).where(ADOPTION_STEPS.c.tenant_id == with_dir))
        await backfills.mark(session, with_dir, "adoption_steps")
    pending = await _counts_on(engine, with_dir, year[-4:])
    assert [s for s, _ in pending] == [scan for _, scan in pending]  # the scan, while the table is empty
    filled = await run_backfill(metrics_url, [], True, [])  # --all: every tenant with facts
    assert sorted(filled) == sorted((with_dir, without))
    assert all("adoption_steps" in names for names in filled.values())
    async with make_sessionmaker(engine)() as session:
        assert await snapshot(session, with_dir) == live
        assert not await backfills.pending(session, with_dir, "adoption_steps")
