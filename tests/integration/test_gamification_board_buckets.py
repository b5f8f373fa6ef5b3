"""A window's board is read by the points' bucket (docs/adr/0032-board-ranks-by-points-bucket.md):
every page, the team boards, "me" and the live feed's first page equal a plain ``ORDER BY points
DESC, employee_id`` of the same rows, with ties and points on both sides of every bucket's edge;
the bucket the database stores is ``domain.points_bucket``; and an update of a total that stays in
its bucket is HOT (no rank index holds the points)."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa

from advocacy_common.pagination import PageParams, decode_cursor
from advocacy_gamification import domain
from advocacy_gamification.features import leaderboard
from advocacy_gamification.features.awards import apply_events
from tests.integration.test_gamification_support import Gam, click, gam, gam_url, share

__all__ = ["gam", "gam_url"]

START = domain.ALL_TIME_START
# each side of every edge the pages cross, ties on most, the int4 extremes, 0 and (never written by
# the ledger, but ordered all the same) negative totals
EDGES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 2**30, 2**31 - 1]
POINTS = sorted({*EDGES, *(-p for p in EDGES[:8]), -(2**31)})
TEAMS = ("red", "blue", None)


async def plant(g: Gam, tenant: str) -> None:
    """1-4 people on each score, in three teams (one: none); some anonymous, some opted out or hidden
    (their rows unranked, as ``sync_board_copies`` leaves them); score counts as the ledger keeps them."""
    rng = random.Random(32)
    members, totals = [], []
    n = 0
    for p in POINTS:
        for _ in range(rng.randint(1, 4)):
            emp = rng.choice(["p", "P", "q-", "z"]) + f"{n:03d}"
            n += 1
            team = rng.choice(TEAMS)
            visibility = rng.choice(["ranked"] * 6 + ["anonymous", "hidden"])
            enrolled = rng.random() > 0.1
            members.append({"t": tenant, "e": emp, "n": emp.upper(), "team": team, "v": visibility, "en": enrolled})
            ranked = domain.is_ranked(enrolled, visibility)
            totals.append({"t": tenant, "s": START, "e": emp, "team": team, "p": p, "r": ranked})
    async with g.sm() as s, s.begin():
        await s.execute(
            sa.text(
                "INSERT INTO members (tenant_id, employee_id, name, team, visibility, enrolled, updated_at) "
                "VALUES (:t, :e, :n, :team, :v, :en, now())"
            ),
            members,
        )
        await s.execute(
            sa.text(
                'INSERT INTO points_totals (tenant_id, "window", window_start, employee_id, team, points, ranked) '
                "VALUES (:t, 'all', :s, :e, :team, :p, :r)"
            ),
            totals,
        )
        await s.execute(
            sa.text(
                'INSERT INTO score_counts (tenant_id, "window", window_start, points, count) '
                'SELECT tenant_id, "window", window_start, points, count(*) FROM points_totals '
                "WHERE tenant_id = :t AND ranked GROUP BY 1, 2, 3, 4"
            ),
            {"t": tenant},
        )


async def oracle(g: Gam, tenant: str, team: str | None) -> list[dict[str, Any]]:
    """The board by a plain sort of its rows; rank = 1 + the ranked people with more points."""
    rows = await g.rows(
        "SELECT t.employee_id, t.points, t.team, m.name, m.visibility FROM points_totals t "
        "LEFT JOIN members m ON m.tenant_id = t.tenant_id AND m.employee_id = t.employee_id "
        "WHERE t.tenant_id = :t AND t.\"window\" = 'all' AND t.window_start = :s AND t.ranked "
        "AND (CAST(:team AS varchar) IS NULL OR t.team = :team) "
        "ORDER BY t.points DESC, t.employee_id",
        t=tenant,
        s=START,
        team=team,
    )
    points = [r.points for r in rows]
    return [
        {
            "rank": 1 + sum(1 for q in points if q > r.points),
            **leaderboard.display(r.employee_id, r.name, r.team, r.visibility),
            "points": r.points,
        }
        for r in rows
    ]


async def walk(g: Gam, tenant: str, team: str | None, limit: int) -> list[dict[str, Any]]:
    """Every page of the board, ``limit`` a page, following the cursors."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        async with g.sm() as s:
            page = PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)
            body = await leaderboard.board(s, tenant, "all", team, None, page)
        cursor = body["next_cursor"]
        assert len(body["items"]) == limit or cursor is None
        items += body["items"]
        if cursor is None:
            return items
    raise AssertionError("the pages never end")


async def test_the_stored_bucket_is_the_domain_bucket(gam: Gam, new_tenant: str) -> None:
    await plant(gam, new_tenant)
    rows = await gam.rows("SELECT points, bucket FROM points_totals WHERE tenant_id = :t", t=new_tenant)
    assert {r.points for r in rows} == set(POINTS)
    assert [(r.points, r.bucket) for r in rows] == [(r.points, domain.points_bucket(r.points)) for r in rows]


async def test_every_page_and_place_equals_a_plain_sort(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await plant(gam, t)
    for team in TEAMS:
        expected = await oracle(gam, t, team)
        assert len({i["points"] for i in expected}) > 10, "the board must cross many buckets"
        for limit in (1, 2, 3, 7, 100):
            assert await walk(gam, t, team, limit) == expected, (team, limit)
    # "me": a rank over the whole board and the gap to the next score up (none for the opted out)
    board = await oracle(gam, t, None)
    people = await gam.rows(
        "SELECT t.employee_id, t.points, m.enrolled FROM points_totals t JOIN members m "
        "ON m.tenant_id = t.tenant_id AND m.employee_id = t.employee_id WHERE t.tenant_id = :t",
        t=t,
    )
    scores = [i["points"] for i in board]
    for p in people:
        async with gam.sm() as s:
            me = await leaderboard.me(s, t, p.employee_id, "all")
        higher = [q for q in scores if q > p.points]
        want = (1 + len(higher), min(higher) - p.points if higher else None) if p.enrolled else (None, None)
        assert (me["rank"], me["points"], me["gap_to_next"]) == (want[0], p.points, want[1]), (p, me)
    # the live feed's top 50
    async with gam.sm() as s:
        live = await leaderboard.live_board(s, (t, "all", None, 50))
    assert live["items"] == board[:50]


async def test_a_total_that_stays_in_its_bucket_is_updated_in_place(gam: Gam, new_tenant: str) -> None:
    """The consumer's totals statement: a share (10 points: bucket 4, 8-15) inserts the person's
    three window totals; a click (11) updates them HOT; more clicks to 16 (bucket 5) do not."""
    t = new_tenant
    hot = sa.text(
        "SELECT pg_stat_get_xact_tuples_updated('points_totals'::regclass), "
        "pg_stat_get_xact_tuples_hot_updated('points_totals'::regclass)"
    )
    async with gam.sm() as s, s.begin():
        await apply_events(s, [share(t, "ann")])
        await apply_events(s, [click(t, "ann")])
        assert tuple((await s.execute(hot)).one()) == (3, 3)
        await apply_events(s, [click(t, "ann") for _ in range(5)])
        assert tuple((await s.execute(hot)).one()) == (6, 3)
        rows = (
            await s.execute(sa.text("SELECT points, bucket FROM points_totals WHERE tenant_id = :t"), {"t": t})
        ).all()
    assert sorted(tuple(r) for r in rows) == [(16, 5)] * 3
