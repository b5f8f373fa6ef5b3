"""Metrics answers put together from several statements read one snapshot: a consumer batch that
commits between two of the statements is in every figure of the answer or in none. Each case lets
half of a programme commit right after the use case's first read of the conversion roll-ups (the
stats follow), and the answer must be the one read before that half came."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import TenantSettingsUpdated
from advocacy_common.events.sharing import ShareClicked
from advocacy_common.tenant import TenantSettings
from advocacy_metrics.adapters.ranges import DayRange
from advocacy_metrics.features import export, reports, weekly
from tests.integration.test_metrics_rebuild import engine, feed, metrics_url, programme  # noqa: F401
from tests.support.snapshots import CommitBetweenReads

FROM, TO = "2025-06-01", "2026-05-31"
Case = Callable[[AsyncSession, Principal, str], Awaitable[Any]]


async def _employee(session: AsyncSession, admin: Principal, who: str) -> Any:
    return await reports.employee_metrics(session, admin, who, FROM, TO)


async def _content(session: AsyncSession, admin: Principal, who: str) -> Any:
    return await reports.content_metrics(session, admin, "c1", FROM, TO)


async def _summary_page(session: AsyncSession, admin: Principal, who: str) -> Any:
    return await reports.summary(session, admin, "employee", FROM, TO, 5, None, "clicks")


async def _roi(session: AsyncSession, admin: Principal, who: str) -> Any:
    return await reports.roi(session, admin, FROM, TO)


async def _adoption(session: AsyncSession, admin: Principal, who: str) -> Any:
    return await reports.adoption_metrics(session, admin, FROM, TO)


CASES: dict[str, tuple[Case, str]] = {
    "employee": (_employee, "conversions"),  # "my results": totals beside the same by network
    "content": (_content, "conversions"),
    "summary": (_summary_page, "conversions"),  # a page ranked by clicks beside the range's totals
    "roi": (_roi, "conversions"),  # value (conversions, earned media) over cost
    "adoption": (_adoption, "directory_facts"),  # sharers over eligible people (after the directory probe)
}


def priced(events: list[Envelope[Any]]) -> list[Envelope[Any]]:
    """The programme with a price per click and a monthly fee: ROI then has a value and a cost."""
    first = events[0]
    assert isinstance(first.data, TenantSettingsUpdated)
    cost = {
        "cpc": {"linkedin": {"amount": "0.50", "currency": "EUR"}},
        "programme_cost": {"amount": "1000", "currency": "EUR"},
    }
    settings = TenantSettings.model_validate({**first.data.settings.model_dump(mode="json"), **cost})
    data = first.data.model_copy(update={"settings": settings})
    return [new_event(first.source, first.tenant_id, data), *events[1:]]


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_batch_committing_between_the_reads_is_in_all_figures_or_none(
    engine: AsyncEngine,  # noqa: F811
    case: str,
) -> None:
    use, after = CASES[case]
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    events = priced(programme(tenant, 3000, random.Random(21)))
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    clicked = [e.data.employee_id for e in second if isinstance(e.data, ShareClicked)]
    who = max(set(clicked), key=clicked.count)  # someone the second half moves
    await feed(engine, first)
    admin = Principal(sub="admin", tenant_id=tenant, roles=frozenset({"admin"}))
    sessionmaker = make_sessionmaker(engine)

    async def answer() -> Any:
        async with sessionmaker() as session, session.begin():
            return await use(session, admin, who)

    before = await answer()
    async with sessionmaker() as session, session.begin():  # as SessionDep: one transaction per request
        racing = CommitBetweenReads(session, after, lambda: feed(engine, second))
        during = await use(racing, admin, who)  # type: ignore[arg-type]
    assert racing.committed
    after_it = await answer()
    assert after_it != before, "the second half changes nothing: the case proves nothing"
    assert during == before


async def test_the_weekly_report_reads_its_figures_from_one_snapshot(engine: AsyncEngine) -> None:  # noqa: F811
    """The report's totals, top lists and adoption are of one moment: a batch committing while the
    report is composed is in none of them (the next week's report is composed from what it holds)."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    events = programme(tenant, 3000, random.Random(22))
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    await feed(engine, first)
    sessionmaker = make_sessionmaker(engine)
    now = datetime(2025, 6, 23, 9, tzinfo=UTC)  # the week of 16-22 June is due

    async with sessionmaker() as session, session.begin():
        before = await weekly.draft(session, tenant, now)
    async with sessionmaker() as session, session.begin():
        racing = CommitBetweenReads(session, "conversions", lambda: feed(engine, second))
        during = await weekly.draft(racing, tenant, now)  # type: ignore[arg-type]
    assert racing.committed
    async with sessionmaker() as session, session.begin():
        assert await weekly.draft(session, tenant, now) != before
    assert during == before


async def test_the_csv_export_reads_one_snapshot(engine: AsyncEngine) -> None:  # noqa: F811
    """Each row's conversions and clicks are of one moment (read in two statements)."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    events = programme(tenant, 3000, random.Random(23))
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    await feed(engine, first)
    sessionmaker = make_sessionmaker(engine)
    days = DayRange(datetime(2025, 6, 1).date(), datetime(2026, 5, 31).date())
    settings = TenantSettings(time_zone="Europe/Berlin")

    async def csv(maker: Any) -> str:
        return "".join([chunk async for chunk in export.stream_csv(maker, tenant, "employee", days, settings)])

    before = await csv(sessionmaker)

    racing: list[CommitBetweenReads] = []

    @contextlib.asynccontextmanager
    async def maker() -> AsyncIterator[CommitBetweenReads]:  # the export opens its own session
        async with sessionmaker() as session:
            racing.append(CommitBetweenReads(session, "conversions", lambda: feed(engine, second)))
            yield racing[0]

    during = await csv(maker)
    assert racing[0].committed
    assert await csv(sessionmaker) != before
    assert during == before
