"""Adoption against the company directory (issue 17), through metrics' real consumer handler and
database: with a directory, the denominator is the people provisioned and active at the end of the
range, and the report gives the share of them who shared this week and this month; without one it
is the enrolled, as before. Erasure removes a person's directory records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberErased, MemberProvisioned, MemberUpdated
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.person_export import export_person
from advocacy_metrics.features import reports
from advocacy_metrics.features.person_export import SECTIONS
from tests.integration.test_metrics_rebuild import engine, feed, metrics_url  # noqa: F401

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
