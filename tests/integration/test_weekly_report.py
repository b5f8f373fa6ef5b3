"""The weekly programme report to admins (issue 18, ADR 0017): its figures equal the metrics API's.

Activity (shares, clicks of every verdict, conversions, the directory) goes through metrics' own
event handler into a real database; the report pass runs at an injected time; the report event it
writes to the outbox is compared field by field with what ``GET /v1/metrics/summary`` and
``GET /v1/metrics/adoption`` answer for the same days, through the metrics API itself (HTTP, an
admin's token). Then notifications' consumer handler takes the event, its pass writes the email to
the tenant's admin, and the email's figures are read back and compared with the API's too.

The tenant is in New York with weeks starting on Sunday, and the reported week holds the switch to
daylight saving time (8 March 2026): a report computed in UTC, or with Monday weeks, differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import Envelope, decode, new_event
from advocacy_common.events.content import ContentPublished, MemberProvisioned, TenantSettingsUpdated
from advocacy_common.events.metrics import WeeklyReportComposed
from advocacy_common.events.sharing import ConversionRecorded, ShareClicked, ShareCreated, Verdict
from advocacy_common.migrations import upgrade
from advocacy_common.money import Money
from advocacy_common.tenant import TenantSettings
from advocacy_metrics.app import create_app as create_metrics
from advocacy_metrics.features import weekly
from advocacy_metrics.settings import MetricsSettings
from advocacy_notifications.app import create_app as create_notifications
from advocacy_notifications.db import Message
from advocacy_notifications.features import copies, reports
from advocacy_notifications.settings import NotificationsSettings
from tests.integration.test_metrics_rebuild import engine, feed, metrics_url  # noqa: F401

CONTENT = "/advocacy/content"
SHARING = "/advocacy/sharing"
ZONE = ZoneInfo("America/New_York")
WEEK = (date(2026, 3, 8), date(2026, 3, 14))  # Sunday to Saturday; clocks go forward on the 8th
PREVIOUS = (date(2026, 3, 1), date(2026, 3, 7))
# the report of WEEK is due from 06:00 local on Sunday 15 March
DUE = datetime(2026, 3, 15, 7, 30, tzinfo=ZONE)
FIGURES = ("shares", "clicks", "reach", "conversions")
EMPLOYEES = [f"e{i:02d}" for i in range(16)]
CONTENTS = [f"c{i:02d}" for i in range(14)]


def local(day: date, seconds: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE) + timedelta(seconds=seconds)


def activity(tenant: str, rng: random.Random) -> list[Envelope[Any]]:
    """Three weeks and a bit around WEEK: shares, their clicks (some across a week's end, some not
    counted), conversions of counted clicks; 20 people in the directory, one deactivated in WEEK."""
    out: list[Envelope[Any]] = [
        new_event(
            CONTENT,
            tenant,
            TenantSettingsUpdated(
                settings=TenantSettings(time_zone="America/New_York", week_starts_on="sunday"),
                updated_at=datetime(2026, 1, 1, tzinfo=UTC),
            ),
        )
    ]
    for i in range(20):
        out.append(
            new_event(
                CONTENT,
                tenant,
                MemberProvisioned(
                    employee_id=f"e{i:02d}",
                    user_name=f"e{i:02d}@example.com",
                    active=True,
                    updated_at=datetime(2026, 2, 1, tzinfo=UTC),
                ),
            )
        )
    out.append(
        new_event(
            CONTENT,
            tenant,
            MemberProvisioned(
                employee_id="e19", user_name="e19@example.com", active=False, updated_at=local(WEEK[0], 3 * 86400)
            ),
        )
    )
    first = date(2026, 2, 26)
    for n in range(160):
        emp = rng.choice(EMPLOYEES[: 4 + n % len(EMPLOYEES)])  # some people share far more than others
        content_id = rng.choice(CONTENTS[: 3 + n % len(CONTENTS)])
        network = rng.choice(["linkedin", "x"])
        at = local(first, rng.randrange(19 * 86400))
        share_id = f"s{n}"
        out.append(
            new_event(
                SHARING,
                tenant,
                ShareCreated(
                    share_id=share_id,
                    employee_id=emp,
                    content_id=content_id,
                    network=network,
                    code=share_id,
                    created_at=at,
                    audience_size=rng.randrange(50, 5000),
                ),
            )
        )
        for k in range(rng.randrange(0, 7)):
            click_id = f"{share_id}k{k}"
            verdict = rng.choice([Verdict.counted] * 4 + [Verdict.bot, Verdict.duplicate])
            clicked = at + timedelta(seconds=rng.randrange(3 * 86400))
            out.append(
                new_event(
                    SHARING,
                    tenant,
                    ShareClicked(
                        click_id=click_id,
                        share_id=share_id,
                        code=share_id,
                        employee_id=emp,
                        content_id=content_id,
                        network=network,
                        clicked_at=clicked,
                        verdict=verdict,
                    ),
                )
            )
            if verdict is Verdict.counted and rng.random() < 0.3:
                out.append(
                    new_event(
                        SHARING,
                        tenant,
                        ConversionRecorded(
                            conversion_id=f"v{click_id}",
                            click_id=click_id,
                            share_id=share_id,
                            employee_id=emp,
                            content_id=content_id,
                            network=network,
                            kind=rng.choice(["signup", "lead"]),
                            value=Money(amount=Decimal("10.00"), currency="EUR"),
                            external_id=f"x{click_id}",
                            occurred_at=clicked + timedelta(hours=rng.randrange(1, 30)),
                        ),
                    )
                )
    return out


@contextlib.asynccontextmanager
async def api(app: Any, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://service.test",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as client,
    ):
        yield client


async def api_week(client: httpx.AsyncClient, start: date, end: date) -> dict[str, Any]:
    """What the metrics API answers for the week: totals, groups by content and employee, adoption."""
    span = {"from": start.isoformat(), "to": end.isoformat()}
    out: dict[str, Any] = {}
    for group_by in ("week", "content", "employee"):
        r = await client.get("/v1/metrics/summary", params={**span, "group_by": group_by, "limit": 5000})
        assert r.status_code == 200, r.text
        out[group_by] = r.json()
    r = await client.get("/v1/metrics/adoption", params=span)
    assert r.status_code == 200, r.text
    out["adoption"] = r.json()
    return out


def expected_top(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The API's groups ranked as the report says it ranks (counted clicks, shares, conversions,
    reach, descending; ties in the API's key order), the first ten, as (key, figures...)."""
    ranked = sorted(items, key=lambda i: (-i["clicks"], -i["shares"], -i["conversions"], -i["reach"]))
    return [(i["key"], *(i[f] for f in FIGURES)) for i in ranked[:10]]


def report_top(entries: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.key, *(getattr(e, f) for f in FIGURES)) for e in entries]


def compare(report_week: Any, answers: dict[str, Any], *, top: bool) -> None:
    totals = answers["week"]["totals"]
    for f in FIGURES:
        assert getattr(report_week.totals, f) == totals[f], f
    adoption = answers["adoption"]
    assert adoption["this_week"]["from"] == report_week.start.isoformat()  # the API's week is the report's
    assert report_week.adoption.eligible == adoption["eligible"]
    assert report_week.adoption.eligible_source == adoption["eligible_source"]
    assert report_week.adoption.sharers == adoption["this_week"]["sharers"]
    assert report_week.adoption.share_rate == adoption["this_week"]["share_rate"]
    if top:
        assert report_top(report_week.top_content) == expected_top(answers["content"]["items"])
        assert report_top(report_week.top_advocates) == expected_top(answers["employee"]["items"])


def _n(s: str) -> int:
    return int(s.replace(",", ""))


def email_figures(text: str, labels: dict[str, str]) -> dict[str, Any]:
    """The figures an admin reads in the text part."""
    out: dict[str, Any] = {}
    names = {"Shares": "shares", "Counted clicks": "clicks", "Reach": "reach", "Conversions": "conversions"}
    for label, field in names.items():
        m = re.search(rf"^{label}: ([\d,]+) \(week before: ([\d,]+), ", text, re.M)
        assert m, (label, text)
        out[field] = (_n(m[1]), _n(m[2]))
    m = re.search(r"^Adoption: ([\d,]+) of ([\d,]+) eligible .*\(week before: ([\d,]+) of ([\d,]+), ", text, re.M)
    assert m, text
    out["adoption"] = tuple(_n(g) for g in m.groups())
    for section, key in (("Top content", "content"), ("Top advocates", "employee")):
        block = text.split(f"{section}")[1].split("\n\n")[0]
        rows = re.findall(
            r"^\d+\. (.+): ([\d,]+) clicks, ([\d,]+) shares, ([\d,]+) reach, ([\d,]+) conversions$", block, re.M
        )
        # the report names what it ranks (a title, a name): back to the API's keys
        out[key] = [(labels.get(r[0], r[0]), _n(r[2]), _n(r[1]), _n(r[3]), _n(r[4])) for r in rows]
    return out


async def outbox_reports(eng: AsyncEngine, tenant: str) -> list[Envelope[Any]]:
    async with eng.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT headers, value FROM outbox WHERE tenant_id = :t AND event_type = :ty ORDER BY id"),
                {"t": tenant, "ty": WeeklyReportComposed.TYPE},
            )
        ).all()
    return [decode([(k, v.encode()) for k, v in headers], bytes(value)) for headers, value in rows]


@pytest.fixture
async def notifications_url(pg: Any) -> str:
    url: str = pg.create_database(f"notifications_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(upgrade, "advocacy_notifications", url)
    return url


async def test_the_weekly_report_equals_the_metrics_api_field_by_field(
    engine: AsyncEngine,  # noqa: F811
    metrics_url: str,  # noqa: F811
    notifications_url: str,
    dev_keys: Any,
    mint: Callable[..., str],
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await feed(engine, activity(tenant, random.Random(18)))
    sessionmaker = make_sessionmaker(engine)

    # before 06:00 on the Sunday the week that just ended is not due: the one before it is
    assert await weekly.compose_due(sessionmaker, DUE.replace(hour=5)) >= 1
    assert await weekly.compose_due(sessionmaker, DUE) >= 1
    # a second pass, later the same week (another worker, a restart), composes nothing for the tenant
    await weekly.compose_due(sessionmaker, DUE + timedelta(days=2))
    events = await outbox_reports(engine, tenant)
    assert [e.data.week.start for e in events] == [PREVIOUS[0], WEEK[0]]
    env = events[1]
    report: WeeklyReportComposed = env.data
    assert env.id == report.report_id and env.key == tenant
    assert (report.week.start, report.week.end) == WEEK and (report.previous.start, report.previous.end) == PREVIOUS

    settings = MetricsSettings(
        database_url=metrics_url,
        role="api",
        dev_mode=True,
        jwt_jwks_path=str(dev_keys.jwks_path),
        log_json=False,
        log_level="WARNING",
    )
    async with api(create_metrics(settings), mint(tenant, "boss", "admin")) as client:
        this_week = await api_week(client, *WEEK)
        week_before = await api_week(client, *PREVIOUS)

    # the data is not trivial: more groups than a top list holds, and the weeks differ in each figure
    assert len(this_week["content"]["items"]) > 10 and len(this_week["employee"]["items"]) > 10
    for f in FIGURES:
        assert this_week["week"]["totals"][f] != week_before["week"]["totals"][f], f
    assert this_week["adoption"]["eligible"] != week_before["adoption"]["eligible"]  # e19 left in WEEK

    compare(report.week, this_week, top=True)
    compare(report.previous, week_before, top=False)

    # notifications: the admin's email carries the same figures, once
    await email_matches(report, env, events[0], this_week, week_before, tenant, notifications_url, dev_keys, mint)


async def email_matches(
    report: WeeklyReportComposed,
    env: Envelope[Any],
    earlier: Envelope[Any],
    this_week: dict[str, Any],
    week_before: dict[str, Any],
    tenant: str,
    url: str,
    dev_keys: Any,
    mint: Callable[..., str],
) -> None:
    titles = {"c00": "Our spring launch"}
    people = {
        "boss": "Ada Admin",
        "quiet": "Quentin Quiet",
        "emp": "Eve Employee",
        "e03": "Person Three",
        "cora": "Cora Comms",
    }
    eng = make_engine(url, pool_size=2)
    sm = make_sessionmaker(eng)
    now = DUE + timedelta(minutes=5)
    try:
        async with sm() as session, session.begin():
            setup: list[Envelope[Any]] = [
                new_event(
                    CONTENT,
                    tenant,
                    MemberProvisioned(
                        employee_id=e, user_name=f"{e}@example.com", display_name=name, active=True, updated_at=now
                    ),
                )
                for e, name in people.items()
            ]
            setup.append(
                new_event(
                    CONTENT,
                    tenant,
                    ContentPublished(
                        content_id="c00",
                        title=titles["c00"],
                        url="https://example.com/c00",
                        slug="c00",
                        published_at=now,
                    ),
                )
            )
            await copies.apply_events(session, setup)
        settings = NotificationsSettings(
            database_url=url,
            role="api",
            dev_mode=True,
            jwt_jwks_path=str(dev_keys.jwks_path),
            log_json=False,
            log_level="WARNING",
        )
        app = create_notifications(settings)
        # two admins open their preferences (one turns the report off), an employee opens theirs
        async with api(app, mint(tenant, "boss", "admin")) as c:
            assert (await c.get("/v1/notifications/preferences")).status_code == 200
        async with api(app, mint(tenant, "quiet", "admin")) as c:
            r = await c.put("/v1/notifications/preferences/report/email", json={"frequency": "off"})
            assert r.status_code == 200, r.text
        async with api(app, mint(tenant, "emp", "employee")) as c:
            assert (await c.get("/v1/notifications/preferences")).status_code == 200
        # cora (communications: no admin role, never opens this API) is listed; ghost has no copy yet
        async with api(app, mint(tenant, "boss", "admin")) as c:
            path = "/v1/notifications/defaults/report-recipients"
            r = await c.put(path, json={"employee_ids": [f"e{i}" for i in range(101)]})
            assert r.status_code == 422, r.text
            r = await c.put(path, json={"employee_ids": ["cora", "ghost", "cora"]})
            assert r.status_code == 200 and r.json() == {"employee_ids": ["cora", "ghost"]}, r.text
            assert (await c.get(path)).json() == {"employee_ids": ["cora", "ghost"]}

        # the week before's report while the tenant has the report off by default: nobody gets it
        async with api(app, mint(tenant, "boss", "admin")) as c:
            r = await c.put("/v1/notifications/defaults/categories/report/email", json={"frequency": "off"})
            assert r.status_code == 200, r.text
        async with sm() as session, session.begin():
            await copies.apply_events(session, [earlier])
        async with sm() as session, session.begin():
            assert await reports.compose_pending(session, now, base_url="http://notifications.test") == 0
        async with api(app, mint(tenant, "boss", "admin")) as c:
            r = await c.put("/v1/notifications/defaults/categories/report/email", json={"frequency": "on"})
            assert r.status_code == 200, r.text

        # the consumer's handler, the event delivered twice; then the pass, twice
        for _ in range(2):
            async with sm() as session, session.begin():
                await copies.apply_events(session, [env])
        for _ in range(2):
            async with sm() as session, session.begin():
                await reports.compose_pending(session, now, base_url="http://notifications.test")
        async with sm() as session:
            messages = (
                await session.scalars(
                    sa.select(Message).where(Message.tenant_id == tenant, Message.category == "report")
                )
            ).all()
    finally:
        await eng.dispose()

    assert sorted((m.employee_id, m.recipient, m.dedupe_key) for m in messages) == [
        ("boss", "boss@example.com", f"report:boss:{WEEK[0].isoformat()}"),
        ("cora", "cora@example.com", f"report:cora:{WEEK[0].isoformat()}"),
    ]
    text = next(m.body_text for m in messages if m.employee_id == "boss")
    assert "Hello Ada Admin" in text and "Our spring launch" in text and "Person Three" in text
    labels = {titles["c00"]: "c00", people["e03"]: "e03"}
    got = email_figures(text, labels)
    for f in FIGURES:
        assert got[f] == (this_week["week"]["totals"][f], week_before["week"]["totals"][f]), f
    a, b = this_week["adoption"], week_before["adoption"]
    assert got["adoption"] == (a["this_week"]["sharers"], a["eligible"], b["this_week"]["sharers"], b["eligible"])
    assert got["content"] == expected_top(this_week["content"]["items"])
    assert got["employee"] == expected_top(this_week["employee"]["items"])
