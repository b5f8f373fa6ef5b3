"""Summary pages: for every grouping and several page sizes, the pages put together are the whole
answer, group for group, with the whole range's totals on every page. The programme has groups with
conversions and none of the stats rows around them, more networks per group than one, and a range
with edge days around whole months (the monthly roll-up plus the daily one). Ranked by counted
clicks (``order=clicks``), the pages put together are the same groups sorted by clicks, ties
(there are many) in key order."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_sessionmaker
from advocacy_common.errors import Unprocessable
from advocacy_metrics.adapters import queries
from advocacy_metrics.features import reports
from tests.integration.test_metrics_rebuild import engine, feed, metrics_url, programme  # noqa: F401

RANGES = ({"from": "2025-06-01", "to": "2026-05-31"}, {"from": "2025-06-17", "to": "2025-09-03"})


async def _pages(
    eng: AsyncEngine, admin: Principal, group_by: str, rng: dict[str, str], limit: int, order: str = "key"
) -> Any:
    items: list[Any] = []
    totals = []
    cursor = None
    sessionmaker = make_sessionmaker(eng)
    for _ in range(10_000):
        async with sessionmaker() as session:
            page = await reports.summary(session, admin, group_by, rng["from"], rng["to"], limit, cursor, order)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        totals.append(page["totals"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, totals
        assert len(page["items"]) == limit
    raise AssertionError("no last page")


@pytest.mark.parametrize("group_by", queries.GROUP_BYS)
async def test_pages_put_together_are_the_whole_answer(engine: AsyncEngine, group_by: str) -> None:  # noqa: F811
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await feed(engine, programme(tenant, 6000, random.Random(11)))
    admin = Principal(sub="admin", tenant_id=tenant, roles=frozenset({"admin"}))
    for rng in RANGES:
        whole, (totals,) = await _pages(engine, admin, group_by, rng, reports.SUMMARY_MAX_LIMIT)
        assert len(whole) >= 3, (group_by, rng)
        for limit in (1, 2, 7):
            items, page_totals = await _pages(engine, admin, group_by, rng, limit)
            assert items == whole, (group_by, rng, limit)
            assert all(t == totals for t in page_totals), (group_by, rng, limit)


async def test_pages_by_counted_clicks_are_the_whole_answer_ranked(engine: AsyncEngine) -> None:  # noqa: F811
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await feed(engine, programme(tenant, 6000, random.Random(12)))
    admin = Principal(sub="admin", tenant_id=tenant, roles=frozenset({"admin"}))
    for group_by in ("employee", "content", "team", "country", "week"):
        for rng in RANGES:
            whole, (totals,) = await _pages(engine, admin, group_by, rng, reports.SUMMARY_MAX_LIMIT)
            # key order is code-point order of the keys (None, the unknown group, first)
            ranked = sorted(whole, key=lambda i: (-i["clicks"], i["key"] or ""))
            if group_by == "employee":  # 400 people: many tie, and the tie order is tested
                clicks = [i["clicks"] for i in ranked]
                assert len(set(clicks)) < len(clicks) // 2, "few ties"
            for limit in (reports.SUMMARY_MAX_LIMIT, 3, 10):
                items, page_totals = await _pages(engine, admin, group_by, rng, limit, "clicks")
                assert items == ranked, (group_by, rng, limit)
                assert all(t == totals for t in page_totals), (group_by, rng, limit)
    # a cursor goes on in the order it was written in
    async with make_sessionmaker(engine)() as session:
        page = await reports.summary(session, admin, "employee", "2025-06-01", "2026-05-31", 5, None, "clicks")
        with pytest.raises(Unprocessable):
            await reports.summary(session, admin, "employee", "2025-06-01", "2026-05-31", 5, page["next_cursor"])
