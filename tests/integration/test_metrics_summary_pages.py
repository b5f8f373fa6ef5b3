"""Summary pages: for every grouping and several page sizes, the pages put together are the whole
answer, group for group, with the whole range's totals on every page. The programme has groups with
conversions and none of the stats rows around them, more networks per group than one, and a range
with edge days around whole months (the monthly roll-up plus the daily one). Ranked by counted
clicks (``order=clicks``), the pages put together are the same groups sorted by clicks, ties
(there are many) in key order."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_sessionmaker
from advocacy_common.errors import Unprocessable
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import TenantSettingsUpdated
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.money import Money
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics import domain
from advocacy_metrics.adapters import backfills, queries, ranges, ranking
from advocacy_metrics.adapters.queries import Ranked
from advocacy_metrics.adapters.ranges import DayRange
from advocacy_metrics.db import CONTENT_MONTHLY_STATS, EMPLOYEE_MONTHLY_STATS
from advocacy_metrics.domain.measures import Pricing
from advocacy_metrics.features import reports
from tests.integration.test_metrics_rebuild import engine, feed, metrics_url, programme  # noqa: F401
from tests.support.clicks import converted, invalidated

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
    # a person and an item with a conversion in both ranges and no stats row in them (the click is
    # on May 31): the first group and the last in key order
    only = []
    for who in ("a-conv", "zz-conv"):
        (click,) = _clicks(tenant, who, date(2025, 5, 31), 1, "conv")
        sale = Money(amount=Decimal("12.5"), currency="EUR")
        at = datetime(2025, 6, 20, 12, tzinfo=UTC)
        conversion = converted(
            click, conversion_id=f"{tenant}-{who}", kind="sale", value=sale, external_id=who, occurred_at=at
        )
        only += [new_event("/advocacy/sharing", tenant, e) for e in (click, conversion)]
    await feed(engine, only)
    admin = Principal(sub="admin", tenant_id=tenant, roles=frozenset({"admin"}))
    for rng in RANGES:
        whole, (totals,) = await _pages(engine, admin, group_by, rng, reports.SUMMARY_MAX_LIMIT)
        assert len(whole) >= 3, (group_by, rng)
        if group_by in reports.ROW_GROUPS:  # items built from the rows: each group's measures (the old way)
            async with make_sessionmaker(engine)() as session:
                settings = await load_tenant_settings(session, tenant)
                days = ranges.resolve(rng["from"], rng["to"], settings.zone, reports.today_in(settings))
                pricing = Pricing.of(settings)
                groups = queries.iter_groups(session, reports.summary_query(tenant, group_by, days, settings))
                assert whole == [reports.group_measures(k, g, group_by, pricing) async for k, g in groups], rng
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


def _clicks(tenant: str, employee: str, day: date, n: int, tag: str) -> list[ShareClicked]:
    """``n`` counted clicks of ``employee``'s share of content ``c-<employee>`` at noon UTC on ``day``."""
    at = datetime.combine(day, time(12), UTC)
    return [
        ShareClicked(
            click_id=f"{tenant}-{employee}-{tag}-{i}",
            share_id=f"{tenant}-s-{employee}",
            code=f"k-{employee}",
            employee_id=employee,
            content_id=f"c-{employee}",
            network=("linkedin", "x")[i % 2],  # two networks: a ranking row sums them
            clicked_at=at,
            verdict=Verdict.counted,
        )
        for i in range(n)
    ]


def _adversarial(tenant: str) -> list[Envelope[Any]]:
    """The threshold's edges, for the range 2025-07-20 .. 2025-09-10 (its months: July and September
    partly, August whole). ``decoy``'s 200 clicks lie in July before the range (its whole-month count
    bounds them, and makes the first round's bucket 5); ``spread`` has 31 a month in each month
    (bucket 4: no candidate in the first round) yet 93 in range, more than any candidate but the
    top one; ``edge``'s clicks all fall in the partial edge month; 64 and 128 are at the top of their
    buckets; ``gone``'s one click is invalidated, which empties its rows (they must go). The yearly
    list's rows at 0: ``bots`` has only bot clicks in 2025, ``gone`` drops to 0 and ``woken``'s bot
    click is followed by a counted one (both in the last batch, after the rest), ``late``'s counted
    clicks all fall before July 6; ``bots``, ``gone`` and the content ``c-bots`` tie at 0."""
    settings = TenantSettingsUpdated(
        settings=TenantSettings(time_zone="Europe/Berlin"), updated_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    clicks = [
        *_clicks(tenant, "decoy", date(2025, 7, 5), 200, "a"),
        *_clicks(tenant, "spread", date(2025, 7, 25), 31, "a"),
        *_clicks(tenant, "spread", date(2025, 8, 15), 31, "b"),
        *_clicks(tenant, "spread", date(2025, 9, 5), 31, "c"),
        *_clicks(tenant, "edge", date(2025, 7, 28), 40, "a"),
        *_clicks(tenant, "a128", date(2025, 8, 2), 128, "a"),
        *_clicks(tenant, "a64", date(2025, 8, 31), 64, "a"),
        *_clicks(tenant, "b63", date(2025, 8, 1), 63, "a"),
        *_clicks(tenant, "gone", date(2025, 8, 9), 1, "a"),
        *_clicks(tenant, "late", date(2025, 7, 5), 5, "a"),
        *(c.model_copy(update={"verdict": Verdict.bot}) for c in _clicks(tenant, "late", date(2025, 8, 20), 1, "b")),
    ]
    bot = {"verdict": Verdict.bot}
    clicks += [c.model_copy(update=bot) for c in _clicks(tenant, "bots", date(2025, 8, 12), 2, "a")]
    clicks += [c.model_copy(update=bot) for c in _clicks(tenant, "woken", date(2025, 8, 3), 1, "a")]
    for i in range(30):
        clicks += _clicks(tenant, f"small{i:02}", date(2025, 8, 1 + i % 28), 1 + i % 3, "a")
    gone = next(c for c in clicks if c.employee_id == "gone")
    fraud = invalidated(gone, reason="fraud", at=gone.clicked_at + timedelta(days=1))
    return [
        new_event("/advocacy/content", tenant, settings),
        *(new_event("/advocacy/sharing", tenant, c) for c in clicks),
        *(new_event("/advocacy/sharing", tenant, c) for c in _clicks(tenant, "woken", date(2025, 8, 4), 1, "b")),
        new_event("/advocacy/sharing", tenant, fraud),
    ]


def _ranges(rng: random.Random) -> list[DayRange]:
    """Edge days, month ends, rolling 30 days, a year, and random spans of the programme's year."""
    fixed = [
        DayRange(date(2025, 7, 20), date(2025, 9, 10)),
        DayRange(date(2025, 8, 31), date(2025, 9, 30)),
        DayRange(date(2025, 6, 1), date(2026, 5, 31)),
        DayRange(date(2026, 1, 2), date(2026, 1, 31)),
        DayRange(date(2025, 12, 31), date(2025, 12, 31)),
    ]
    spans = []
    for _ in range(3):
        start = date(2025, 6, 1) + timedelta(days=rng.randrange(360))
        spans.append(DayRange(start, start + timedelta(days=rng.choice([0, 29, 30, rng.randrange(365)]))))
    return fixed + spans


async def test_threshold_ranking_equals_the_full_ranking(engine: AsyncEngine) -> None:  # noqa: F811
    """The ranking by counted clicks from ``ranking_clicks_monthly``'s candidates equals the full
    ranking: on a skewed programme (the threshold stops early), a uniform one (it falls back), and
    the adversarial fixture, for n in 1, 3, 10 and three chained pages; from
    ``ranking_clicks_yearly`` on ranges holding their year's clicks, and off the yearly lists less
    the clicks outside on ranges holding most of their years' (cut at one end, both, across New
    Year), every page to the end, the groups without counted clicks in range included. Each way is
    taken. The narrow list equals the monthly roll-ups summed over networks, and ``bucket``
    is floor(log2)."""
    rng = random.Random(20)
    tenants = {f"t-{uuid.uuid4().hex[:10]}": kind for kind in ("adversarial", "skewed", "uniform")}
    for tenant, kind in tenants.items():
        if kind == "adversarial":
            events = _adversarial(tenant)
            await feed(engine, events[:-2])
            await feed(engine, events[-2:])  # woken's counted click and the invalidation (a negative delta) later
        else:
            await feed(engine, programme(tenant, 3000, rng, skewed=kind == "skewed"))
    sessionmaker = make_sessionmaker(engine)
    paths = Counter(queries.RANKING_PATHS)
    async with sessionmaker() as session:
        # the table's own generated column, at every power of two's edges a bigint holds (rolled back)
        values = sorted({v for k in range(63) for v in (2**k - 1, 2**k, 2**k + 1) if 0 < v < 2**63})
        async with session.begin():
            res = await session.execute(
                sa.text(
                    "INSERT INTO ranking_clicks_monthly (tenant_id, group_by, month, key, clicks_counted) "
                    "SELECT 'bucket-test', 'employee', DATE '2025-01-01', v::text, v "
                    "FROM unnest(CAST(:v AS bigint[])) v RETURNING clicks_counted, bucket"
                ),
                {"v": values},
            )
            assert dict(res.all()) == {v: v.bit_length() - 1 for v in values}
            # the yearly list's eighths of an octave: the domain's function, increasing with the count
            res = await session.execute(
                sa.text(
                    "INSERT INTO ranking_clicks_yearly (tenant_id, group_by, year, key, clicks_counted) "
                    "SELECT 'bucket-test', 'employee', 2025, v::text, v "
                    "FROM unnest(CAST(:v AS bigint[])) v RETURNING clicks_counted, bucket"
                ),
                {"v": sorted({v for v in values if v < 2**60} | set(range(70)))},
            )
            buckets = dict(res.all())
            assert buckets == {v: domain.yearly_bucket(v) for v in buckets}
            ordered = [buckets[v] for v in sorted(buckets)]
            assert ordered == sorted(ordered) and domain.yearly_bucket(9) == 25, ordered
            await session.rollback()
        listed_sql = sa.text(
            "SELECT group_by, month, key, clicks_counted, bucket FROM ranking_clicks_monthly WHERE tenant_id = :t"
        )
        yearly_sql = sa.text(
            "SELECT group_by, year, key, clicks_counted FROM ranking_clicks_yearly WHERE tenant_id = :t"
        )
        for tenant in tenants:  # the backfills make what the consumer made (rolled back)
            for sql, recompute in (
                (listed_sql, ranking.recompute_tenant),
                (yearly_sql, ranking.recompute_tenant_yearly),
            ):
                live = sorted((await session.execute(sql, {"t": tenant})).all())
                assert live, (tenants[tenant], sql)
                await recompute(session, tenant)
                assert sorted((await session.execute(sql, {"t": tenant})).all()) == live
                await session.rollback()
        for tenant in tenants:
            for group_by, table, column in (
                ("employee", EMPLOYEE_MONTHLY_STATS, "employee_id"),
                ("content", CONTENT_MONTHLY_STATS, "content_id"),
            ):
                rolled = await session.execute(
                    sa.text(
                        f"SELECT month, {column}, sum(clicks_counted) FROM {table.name} WHERE tenant_id = :t "
                        "GROUP BY 1, 2 HAVING sum(clicks_counted) > 0"
                    ),
                    {"t": tenant},
                )
                listed = await session.execute(
                    sa.text(
                        "SELECT month, key, clicks_counted FROM ranking_clicks_monthly "
                        "WHERE tenant_id = :t AND group_by = :g"
                    ),
                    {"t": tenant, "g": group_by},
                )
                assert sorted(listed.all()) == sorted(rolled.all()), (tenants[tenant], group_by)
        for tenant, kind in tenants.items():
            for days in _ranges(rng):
                for group_by in ("employee", "content"):
                    q = queries.GroupQuery(tenant, group_by, days)
                    for n in (1, 3, 10):
                        after = None
                        for page in range(3):
                            got = await queries.ranked_keys(session, q, after, n)
                            want = await queries.ranked_keys_scan(session, q, after, n)
                            assert got == want, (kind, days, group_by, n, page)
                            if len(want) < n:
                                break
                            after = want[-1]
        # a range holding every counted click of its calendar year is paged off the yearly list, and
        # one holding most of its years' clicks off the lists less the clicks outside, to the end
        # (the last pages reach the groups without counted clicks in range: their rows at 0, in key order)
        years = (
            DayRange(date(2025, 1, 1), date(2025, 12, 31)),
            DayRange(date(2025, 6, 1), date(2025, 12, 31)),  # the programme starts on June 1
            DayRange(date(2026, 1, 1), date(2026, 12, 31)),
            DayRange(date(2025, 7, 1), date(2025, 9, 30)),  # all of the adversarial fixture
            DayRange(date(2025, 7, 6), date(2025, 12, 31)),  # decoy's and late's clicks fall before it
            DayRange(date(2025, 6, 10), date(2025, 12, 20)),  # a year cut at both ends
            DayRange(date(2025, 8, 1), date(2026, 4, 30)),  # across New Year: two years' lists
        )
        for tenant, kind in tenants.items():
            for days in years:
                for group_by in ("employee", "content"):
                    q = queries.GroupQuery(tenant, group_by, days)
                    for n, pages in ((1, 3), (7, 10_000)):
                        after = None
                        for page in range(pages):
                            got = await queries.ranked_keys(session, q, after, n)
                            want = await queries.ranked_keys_scan(session, q, after, n)
                            assert got == want, (kind, days, group_by, n, page)
                            if len(want) < n:
                                break
                            after = want[-1]
        # late's clicks all fall before July 6, yet it has a row in range: it ranks last, with 0
        adversarial = next(t for t, kind in tenants.items() if kind == "adversarial")
        zeros = await session.execute(
            sa.text(
                "SELECT group_by, key, clicks_counted, bucket FROM ranking_clicks_yearly WHERE tenant_id = :t "
                "AND year = 2025 AND key IN ('bots', 'c-bots', 'gone', 'c-gone', 'woken', 'c-woken', 'late')"
            ),
            {"t": adversarial},
        )
        at_0 = (0, domain.YEARLY_ZERO_BUCKET)
        assert sorted(zeros.all()) == [
            ("content", "c-bots", *at_0),
            ("content", "c-gone", *at_0),
            ("content", "c-woken", 1, 0),
            ("employee", "bots", *at_0),
            ("employee", "gone", *at_0),
            ("employee", "late", 5, domain.yearly_bucket(5)),
            ("employee", "woken", 1, 0),
        ]
        year = queries.GroupQuery(adversarial, "employee", DayRange(date(2025, 1, 1), date(2025, 12, 31)))
        assert await queries.ranked_keys(session, year, Ranked(1, "woken"), 5) == [Ranked(0, "bots"), Ranked(0, "gone")]
        q = queries.GroupQuery(adversarial, "employee", DayRange(date(2025, 7, 6), date(2025, 12, 31)))
        assert Ranked(0, "late") in await queries.ranked_keys_scan(session, q, None, 100)
    taken = Counter(queries.RANKING_PATHS) - paths
    assert all(taken[p] > 0 for p in ("year", "complement", "zero tail", "threshold", "full")), taken
    async with sessionmaker() as session, session.begin():  # the ranking's transaction: its settings
        await queries.ranked_keys(session, queries.GroupQuery(adversarial, "employee", years[0]), None, 3)
        shown = [
            await session.scalar(sa.text(f"SHOW {name}")) for name in ("work_mem", "max_parallel_workers_per_gather")
        ]
        assert shown == ["64MB", "0"], shown
    # while the tenant's backfill is pending, the list is not read (it may be incomplete)
    tenant = next(iter(tenants))
    async with sessionmaker() as session, session.begin():
        await backfills.mark(session, tenant, ranking.YEARLY_AGGREGATE)  # the yearly list alone first
        paths = Counter(queries.RANKING_PATHS)
        q = queries.GroupQuery(tenant, "employee", DayRange(date(2025, 1, 1), date(2025, 12, 31)))
        assert await queries.ranked_keys(session, q, None, 1) == await queries.ranked_keys_scan(session, q, None, 1)
        assert not {"year", "complement"} & set(Counter(queries.RANKING_PATHS) - paths)
        await backfills.mark(session, tenant, ranking.AGGREGATE)
        for days in (DayRange(date(2025, 7, 20), date(2025, 9, 10)), DayRange(date(2025, 1, 1), date(2025, 12, 31))):
            paths = Counter(queries.RANKING_PATHS)
            q = queries.GroupQuery(tenant, "employee", days)
            assert await queries.ranked_keys(session, q, None, 1) == await queries.ranked_keys_scan(session, q, None, 1)
            assert Counter(queries.RANKING_PATHS) - paths == Counter(full=1)


async def test_a_list_fill_writes_each_period_on_adjacent_pages(engine: AsyncEngine) -> None:  # noqa: F811
    """A rebuild or backfill writes a ranking list's rows in (group_by, period, key) order, the
    layout the consumer's live inserts give a month's rows: a ranking that reads one month's rows
    (a cut range's outside) then reads adjacent heap pages, not a page a row."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await feed(engine, programme(tenant, 1500, random.Random(13)))
    async with make_sessionmaker(engine)() as session, session.begin():
        for table, column, recompute in (
            ("ranking_clicks_monthly", "month", ranking.recompute_tenant),
            ("ranking_clicks_yearly", "year", ranking.recompute_tenant_yearly),
        ):
            await session.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = :t"), {"t": tenant})
            await recompute(session, tenant)
            rows = f"SELECT group_by, {column}, key FROM {table} WHERE tenant_id = :t ORDER BY "
            by_heap = (await session.execute(sa.text(rows + "ctid"), {"t": tenant})).all()
            in_order = (await session.execute(sa.text(rows + f"group_by, {column}, key"), {"t": tenant})).all()
            assert len({r[0] for r in by_heap}) == 2 and len(by_heap) > 100, table
            assert by_heap == in_order, table
        await session.rollback()
