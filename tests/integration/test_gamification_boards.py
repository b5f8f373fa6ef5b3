"""Boards against the real database: competition ranks, visibility, pages, "me", teams, windows in
the tenant's calendar, erasure, and simulation of proposed rules."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from advocacy_common.pagination import PageParams
from advocacy_gamification.features import leaderboard
from tests.integration.test_gamification_support import (
    Gam,
    click,
    erased,
    gam,
    gam_url,
    membership,
    now,
    score_counts_agree,
    share,
    tenant_settings,
)

__all__ = ["gam", "gam_url"]


async def award(
    g: Gam, tenant: str, emp: str, points: int, *, team: str | None = None, at: datetime | None = None
) -> None:
    """``points`` as one share (10) plus clicks (1 each); points must be >= 10."""
    assert points >= 10
    await g.apply(share(tenant, emp, team=team, at=at), *[click(tenant, emp, at=at) for _ in range(points - 10)])


async def board(c: Any, **params: Any) -> dict[str, Any]:
    r = await c.get("/v1/leaderboard", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_competition_ranks_visibility_and_pages(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    for emp, pts, team in [
        ("a", 30, "x"),
        ("b", 20, "x"),
        ("c", 20, "y"),
        ("d", 20, "y"),
        ("e", 12, "y"),
        ("f", 50, "x"),
    ]:
        await award(gam, t, emp, pts, team=team)
    await gam.apply(
        membership(t, "c", leaderboard="anonymous", team="y"),
        membership(t, "f", enrolled=False, team="x"),  # opted out: not ranked, not listed
        membership(t, "e", leaderboard="hidden", team="y"),  # hidden: not listed
    )
    await score_counts_agree(gam, t)
    c = await gam.as_(t, "a")
    full = await board(c, window="all")
    assert [(i["rank"], i["employee_id"], i["name"], i["points"]) for i in full["items"]] == [
        (1, "a", "A", 30),
        (2, "b", "B", 20),
        (2, None, "Anonymous", 20),
        (2, "d", "D", 20),
    ]
    anonymous = full["items"][2]
    assert anonymous["team"] is None
    # pages of 2: ranks continue across the tie, and no cursor names anyone
    p1 = await board(c, window="all", limit=2)
    p2 = await board(c, window="all", limit=2, cursor=p1["next_cursor"])
    assert [i["rank"] for i in p1["items"] + p2["items"]] == [1, 2, 2, 2]
    assert p2["next_cursor"] is None
    decoded = orjson.loads(base64.urlsafe_b64decode(p1["next_cursor"] + "=" * (-len(p1["next_cursor"]) % 4)))
    assert decoded == [20, 1]
    for sub, expected in [
        ("a", (1, 30, None)),
        ("b", (2, 20, 10)),
        ("c", (2, 20, 10)),
        ("e", (5, 12, 8)),
        ("f", (None, 50, None)),
    ]:
        me = await (await gam.as_(t, sub)).get("/v1/leaderboard/me", params={"window": "all"})
        body = me.json()
        assert (body["rank"], body["points"], body["gap_to_next"]) == expected, sub
    nobody = (await (await gam.as_(t, "zed")).get("/v1/leaderboard/me")).json()
    assert (nobody["rank"], nobody["points"], nobody["gap_to_next"]) == (None, 0, None)
    team_y = await board(c, window="all", team="y")
    assert [(i["rank"], i["points"]) for i in team_y["items"]] == [(1, 20), (1, 20)]
    r = await c.get("/v1/leaderboard", params={"window": "year"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "window"
    r = await c.get("/v1/leaderboard", params={"cursor": "bm9wZQ"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "cursor"
    # another tenant sees nothing of this one
    assert (await board(await gam.as_("t-other", "a"), window="all"))["items"] == []


async def test_team_board_ranks_points_per_active_member(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    # big team: 4 members, 80 points; small team: 2 members, 60 points -> small wins per member
    for emp, pts in [("b1", 20), ("b2", 20), ("b3", 20), ("b4", 20)]:
        await award(gam, t, emp, pts, team="big")
    for emp, pts in [("s1", 40), ("s2", 20)]:
        await award(gam, t, emp, pts, team="small")
    await gam.apply(membership(t, "idle", team="small"))  # enrolled, no points yet: counts as a member
    await gam.apply(membership(t, "gone", team="big", enrolled=False))
    c = await gam.as_(t, "b1")
    r = await c.get("/v1/leaderboard/teams", params={"window": "week"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["rank"], i["team"], i["points"], i["members"], i["points_per_member"]) for i in items] == [
        (1, "big", 80, 4, 20.0),
        (1, "small", 60, 3, 20.0),
    ]


async def test_windows_follow_the_tenant_calendar(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(tenant_settings(t, time_zone="America/Los_Angeles", week_starts_on="sunday"))
    # Sunday 2026-03-01 03:00 UTC is Saturday evening in Los Angeles: last week there
    sat_la = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    sun_la = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    await award(gam, t, "early", 10, at=sat_la)
    await award(gam, t, "late", 11, at=sun_la)
    async with gam.sm() as s:
        page = PageParams(limit=50, cursor=None)
        wk = await leaderboard.board(s, t, "week", None, None, page, now=sun_la + timedelta(hours=1))
        assert [i["employee_id"] for i in wk["items"]] == ["late"]
        assert wk["starts_at"] == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # Sunday midnight PST
        assert wk["ends_at"] == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # Sunday midnight PST, a week on
        prev = await leaderboard.board(s, t, "week", None, None, page, now=sat_la)
        assert [i["employee_id"] for i in prev["items"]] == ["early"]
        month = await leaderboard.board(s, t, "month", None, None, page, now=sun_la)
        assert [i["employee_id"] for i in month["items"]] == ["late"]  # Feb 28 in LA
        me = await leaderboard.me(s, t, "early", "month", now=sat_la)
        assert me["rank"] == 1 and me["points"] == 10


async def test_erasure_keeps_totals_and_others_ranks(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    for emp, pts in [("top", 40), ("mid", 30), ("low", 20)]:
        await award(gam, t, emp, pts, team="x")
    c = await gam.as_(t, "low")
    before = await board(c)
    await gam.apply(erased(t, "mid"))
    await gam.apply(share(t, "mid"))  # a late event about an erased person is ignored
    after = await board(c)
    await score_counts_agree(gam, t)
    assert [(i["rank"], i["points"]) for i in after["items"]] == [(i["rank"], i["points"]) for i in before["items"]]
    assert after["items"][1]["employee_id"] is None and after["items"][1]["name"] == "Anonymous"
    assert await gam.scalar("SELECT count(*) FROM ledger WHERE tenant_id = :t AND employee_id = 'mid'", t=t) == 0
    assert await gam.scalar("SELECT count(*) FROM members WHERE tenant_id = :t AND employee_id = 'mid'", t=t) == 0
    assert await gam.scalar("SELECT sum(points) FROM ledger WHERE tenant_id = :t", t=t) == 90
    me = (await (await gam.as_(t, "low")).get("/v1/leaderboard/me")).json()
    assert me["rank"] == 3 and me["gap_to_next"] == 10


async def test_simulation_shows_the_board_under_proposed_rules_and_writes_nothing(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(
        share(t, "sharer"), share(t, "sharer"), share(t, "clicker"), *[click(t, "clicker") for _ in range(5)]
    )
    admin = await gam.as_(t, "boss", "admin")
    counts_before = await gam.rows("SELECT (SELECT count(*) FROM ledger), (SELECT sum(points) FROM points_totals)")
    r = await admin.post(
        "/v1/rules/simulate", params={"window": "week"}, json={"points": {"click": 5}, "daily_caps": {"click": 3}}
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["rank"], i["employee_id"], i["points"], i["current_points"], i["current_rank"]) for i in items] == [
        (1, "clicker", 25, 15, 2),
        (2, "sharer", 20, 20, 1),
    ]
    assert (
        await gam.rows("SELECT (SELECT count(*) FROM ledger), (SELECT sum(points) FROM points_totals)") == counts_before
    )
    assert await gam.scalar("SELECT count(*) FROM rule_sets WHERE tenant_id = :t", t=t) == 0
    r = await admin.post("/v1/rules/simulate", json={"points": {"click": -1}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "points.click"
    emp = await gam.as_(t, "sharer")
    assert (await emp.post("/v1/rules/simulate", json={})).status_code == 403
    _ = now()


async def test_score_counts_follow_every_change(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    clicks = [click(t, "a") for _ in range(3)]
    await gam.apply(share(t, "a"), share(t, "b"), share(t, "c"), *clicks)
    await gam.apply(membership(t, "b", leaderboard="hidden"), membership(t, "c", enrolled=False))
    await score_counts_agree(gam, t)
    await gam.apply(membership(t, "b", leaderboard="anonymous"), click(t, "b"), click(t, "c"))
    await score_counts_agree(gam, t)
    from tests.integration.test_gamification_support import invalidate

    await gam.apply(invalidate(t, "a", clicks[0].data.click_id), erased(t, "b"), membership(t, "c", enrolled=True))
    await score_counts_agree(gam, t)
    await gam.apply(share(t, "h"), membership(t, "h", leaderboard="hidden"))
    await gam.apply(erased(t, "h"))  # a hidden person stays off the board once erased
    await score_counts_agree(gam, t)
    assert await gam.scalar("SELECT count(*) FROM members WHERE tenant_id = :t AND visibility = 'hidden'", t=t) == 1
    me = (await (await gam.as_(t, "c")).get("/v1/leaderboard/me")).json()
    assert (me["rank"], me["points"], me["gap_to_next"]) == (2, 11, 1)
    p2 = await board(await gam.as_(t, "c"), limit=1)
    p3 = await board(await gam.as_(t, "c"), limit=1, cursor=p2["next_cursor"])
    assert [(i["rank"], i["points"]) for i in p2["items"] + p3["items"]] == [(1, 12), (2, 11)]


async def test_a_new_calendar_rebuilds_the_week_and_month_boards(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    # Monday 1 June 2026 02:00 UTC is still Sunday 31 May in New York: last week and last month there
    at = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    await gam.apply(share(t, "ny", at=at), click(t, "ny", at=at), share(t, "other", at=at + timedelta(days=1)))
    page = PageParams(limit=50, cursor=None)
    later = at + timedelta(days=2)
    async with gam.sm() as s:
        wk = await leaderboard.board(s, t, "week", None, None, page, now=later)
        assert {i["employee_id"] for i in wk["items"]} == {"ny", "other"}
    await gam.apply(tenant_settings(t, time_zone="America/New_York"))
    await score_counts_agree(gam, t)
    async with gam.sm() as s:
        from advocacy_gamification.adapters import context

        context._calendars.clear()  # the API's few-second cache of the calendar
        wk = await leaderboard.board(s, t, "week", None, None, page, now=later)
        assert [(i["employee_id"], i["points"]) for i in wk["items"]] == [("other", 10)]
        month = await leaderboard.board(s, t, "month", None, None, page, now=at)  # 31 May in New York
        assert [(i["employee_id"], i["points"]) for i in month["items"]] == [("ny", 11)]
        me = await leaderboard.me(s, t, "ny", "all", now=later)
        assert me["points"] == 11
    # and later awards land in the new calendar's windows
    await gam.apply(click(t, "ny", at=later))
    await score_counts_agree(gam, t)
    async with gam.sm() as s:
        wk = await leaderboard.board(s, t, "week", None, None, page, now=later)
        assert [(i["employee_id"], i["points"]) for i in wk["items"]] == [("other", 10), ("ny", 1)]


async def test_a_member_change_reaches_every_board_row(gam: Gam, new_tenant: str) -> None:
    """Membership changes find a person's rows through ``boards``: every window they have points in,
    the ones a new calendar rebuilt included."""
    t = new_tenant
    monday = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    await gam.apply(share(t, "ida", at=monday), share(t, "joe", at=monday), click(t, "ida", at=monday))
    await gam.apply(*[click(t, "ida", at=monday + timedelta(days=d)) for d in (9, 40)])
    await gam.apply(tenant_settings(t, time_zone="Asia/Tokyo"))  # week and month rows rebuilt
    await gam.apply(click(t, "ida", at=monday + timedelta(days=70)))
    await gam.apply(membership(t, "ida", team="red", leaderboard="hidden"))
    rows = await gam.rows(
        "SELECT \"window\", team, ranked FROM points_totals WHERE tenant_id = :t AND employee_id = 'ida'", t=t
    )
    assert sorted(r.window for r in rows) == ["all"] + ["month"] * 3 + ["week"] * 4
    assert {(r.team, r.ranked) for r in rows} == {("red", False)}
    await score_counts_agree(gam, t)


async def test_erasing_an_admin_forgets_what_they_did_by_name(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    s = share(t, "emp")
    await gam.apply(s)
    admin = await gam.as_(t, "boss-7", "admin")
    assert (await admin.put("/v1/rules", json={})).status_code == 200
    assert (await admin.post("/v1/rewards", json={"name": "Mug", "cost_points": 5, "stock": 1})).status_code == 201
    r = await admin.post("/v1/points/reversals", json={"employee_id": "emp", "event_id": s.id, "reason": "dup"})
    assert r.status_code == 201 and "(by boss-7)" in r.json()["items"][0]["reason"]
    await gam.apply(erased(t, "boss-7"))
    found = await gam.scalar(
        """SELECT (SELECT count(*) FROM rule_sets WHERE tenant_id = :t AND created_by = 'boss-7')
                + (SELECT count(*) FROM rewards WHERE tenant_id = :t AND created_by = 'boss-7')
                + (SELECT count(*) FROM ledger WHERE tenant_id = :t AND reason LIKE '%boss-7%')""",
        t=t,
    )
    assert found == 0


async def test_tombstones_are_keyed_and_old_unkeyed_ones_still_hold(gam: Gam, new_tenant: str) -> None:
    """Issue 13: the tombstone was sha256(tenant, id), so a dictionary of likely ids named who was
    erased. Now it is an HMAC under a key in the database (migration 0007); tombstones written before
    keep their form and still hold."""
    t = new_tenant
    await gam.apply(share(t, "ada"), share(t, "bea"))
    await gam.apply(erased(t, "ada"))
    stones = [r[0] for r in await gam.rows("SELECT employee_hash FROM erasures WHERE tenant_id = :t", t=t)]
    unkeyed = hashlib.sha256(f"{t}\x00ada".encode()).hexdigest()
    assert len(stones) == 1 and stones[0].startswith("k1:") and unkeyed not in stones[0]
    # a tombstone from before the key: "bea" erased by an older release, then a late event about her
    old = hashlib.sha256(f"{t}\x00bea".encode()).hexdigest()
    async with gam.engine.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO erasures (tenant_id, employee_hash, erased_at) VALUES (:t, :h, now())"),
            {"t": t, "h": old},
        )
    before = await gam.scalar("SELECT count(*) FROM ledger WHERE tenant_id = :t AND employee_id = 'bea'", t=t)
    await gam.apply(share(t, "bea"), share(t, "ada"))
    assert await gam.scalar("SELECT count(*) FROM ledger WHERE tenant_id = :t AND employee_id = 'bea'", t=t) == before
    assert await gam.scalar("SELECT count(*) FROM ledger WHERE tenant_id = :t AND employee_id = 'ada'", t=t) == 0
    # erasing someone already erased in the old form adds no second tombstone
    await gam.apply(erased(t, "bea"))
    assert await gam.scalar("SELECT count(*) FROM erasures WHERE tenant_id = :t", t=t) == 2
