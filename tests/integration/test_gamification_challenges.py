"""Challenges and badges against the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from advocacy_gamification.features import challenges
from tests.integration.test_gamification_support import (
    Gam,
    click,
    conversion,
    gam,
    gam_url,
    invalidate,
    membership,
    now,
    share,
)

__all__ = ["gam", "gam_url"]


async def create(g: Gam, tenant: str, **body: Any) -> dict[str, Any]:
    admin = await g.as_(tenant, "boss", "admin")
    payload = {
        "name": "Launch week",
        "starts_at": (now() - timedelta(hours=1)).isoformat(),
        "ends_at": (now() + timedelta(days=1)).isoformat(),
        "goal": {"kind": "top_n", "value": 2},
        **body,
    }
    r = await admin.post("/v1/challenges", json=payload)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def finalise_all(g: Gam) -> None:
    async with g.sm() as s, s.begin():
        await challenges.finalise_due(s)


async def test_progress_counts_chosen_content_in_the_period_including_before_creation(
    gam: Gam, new_tenant: str
) -> None:
    t = new_tenant
    early = now() - timedelta(minutes=30)
    await gam.apply(
        share(t, "ann", content="launch", at=early, team="red"),  # before creation, in the period: counts
        share(t, "ann", content="other", at=early, team="red"),  # other content: does not
        share(t, "bob", content="launch", at=now() - timedelta(hours=2), team="blue"),  # before the start
    )
    c = await create(gam, t, content_ids=["launch", "launch-2"], goal={"kind": "threshold", "value": 12})
    assert c["status"] == "active" and c["goal"] == {"kind": "threshold", "value": 12}
    k = click(t, "ann", content="launch")
    # bob's in-period share is of the challenge's other item ("launch" again would earn nothing: an
    # item earns share points once per person, issue 13)
    await gam.apply(k, click(t, "ann", content="launch"), share(t, "bob", content="launch-2"))
    await gam.apply(click(t, "bob", content="other"))
    ann = await gam.as_(t, "ann")
    r = await ann.get(f"/v1/challenges/{c['id']}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["progress"]["participants"] == 2
    assert [(i["employee_id"], i["points"], i["reached"]) for i in d["progress"]["top"]] == [
        ("ann", 12, True),
        ("bob", 10, False),
    ]
    assert d["me"] == {"rank": 1, "points": 12, "gap_to_next": None}
    assert d["winners"] is None
    board = (await ann.get("/v1/leaderboard", params={"challenge": c["id"]})).json()
    assert [(i["rank"], i["employee_id"], i["points"]) for i in board["items"]] == [(1, "ann", 12), (2, "bob", 10)]
    assert board["challenge"] == c["id"] and board["ends_at"] is not None
    me = (await (await gam.as_(t, "bob")).get("/v1/leaderboard/me", params={"challenge": c["id"]})).json()
    assert (me["rank"], me["points"], me["gap_to_next"]) == (2, 10, 2)
    # an invalidated click comes off the challenge too (the ledger drives it)
    await gam.apply(invalidate(t, "ann", k.data.click_id))
    top = (await ann.get(f"/v1/challenges/{c['id']}")).json()["progress"]["top"]
    assert [(i["employee_id"], i["points"], i["reached"]) for i in top] == [("ann", 11, False), ("bob", 10, False)]
    listing = (await ann.get("/v1/challenges")).json()
    assert [i["id"] for i in listing["items"]] == [c["id"]]
    other = await gam.as_("t-nobody", "ann")
    assert (await other.get(f"/v1/challenges/{c['id']}")).status_code == 404
    assert (await other.get("/v1/leaderboard", params={"challenge": c["id"]})).status_code == 404


async def test_winners_fixed_once_by_racing_finalisers(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    end = now() + timedelta(seconds=1.5)
    top = await create(gam, t, ends_at=end.isoformat(), goal={"kind": "top_n", "value": 2})
    team = await create(gam, t, ends_at=end.isoformat(), goal={"kind": "team_total", "value": 25})
    await gam.apply(membership(t, "cat", leaderboard="anonymous", team="red"))
    await gam.apply(
        share(t, "ann", team="red"),
        share(t, "bob", team="blue"),
        share(t, "cat", team="red"),
        share(t, "dan", team="blue"),
        *[click(t, "ann") for _ in range(5)],
        *[click(t, "cat") for _ in range(2)],
        *[click(t, "dan") for _ in range(2)],
    )
    # ann 15, cat 12, dan 12, bob 10: top 2 -> ann, and cat and dan tied at rank 2
    await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.1)
    await asyncio.gather(*(finalise_all(gam) for _ in range(6)))
    await gam.apply(*[click(t, "bob", at=end - timedelta(milliseconds=100)) for _ in range(20)])  # late, in period
    await finalise_all(gam)
    viewer = await gam.as_(t, "bob")
    d = (await viewer.get(f"/v1/challenges/{top['id']}")).json()
    assert d["status"] == "ended" and d["finalised_at"] is not None
    assert [(w["rank"], w["employee_id"], w["name"], w["points"]) for w in d["winners"]] == [
        (1, "ann", "Ann", 15),
        (2, None, "Anonymous", 12),
        (2, "dan", "Dan", 12),
    ]
    assert d["progress"]["top"][0]["employee_id"] == "bob"  # progress moved on; the winners did not
    d = (await viewer.get(f"/v1/challenges/{team['id']}")).json()
    assert [(w["rank"], w["team"], w["points"]) for w in d["winners"]] == [(1, "red", 27)]
    assert d["progress"]["teams"][0]["team"] == "blue"
    assert await gam.scalar("SELECT count(*) FROM challenge_winners WHERE challenge_id = :c", c=top["id"]) == 3
    # published once, by the one finaliser, in the same transaction (notifications tells people):
    # created, then each winner, then finalised, all under the challenge's key (so in that order)
    for c, winners in ((top, ["ann", "cat", "dan"]), (team, ["red"])):
        rows = await gam.rows(
            "SELECT event_type, key, convert_from(value, 'UTF8')::jsonb AS data FROM outbox"
            " WHERE tenant_id = :t AND key = :k ORDER BY id",
            t=t,
            k=f"{t}:challenge:{c['id']}",
        )
        assert [r.event_type.split(".")[-2] for r in rows] == ["created", *["won"] * len(winners), "finalised"]
        assert sorted(r.data["employee_id"] or r.data["team"] for r in rows[1:-1]) == winners
        assert rows[-1].data["winners"] == len(winners) and rows[0].data["name"] == c["name"]


async def test_bad_challenges_are_422_naming_the_field(gam: Gam, new_tenant: str) -> None:
    admin = await gam.as_(new_tenant, "boss", "admin")
    start = now()
    good = {
        "name": "x",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=1)).isoformat(),
        "goal": {"kind": "threshold", "value": 5},
    }
    for patch, field in [
        ({"ends_at": (start - timedelta(days=1)).isoformat()}, "ends_at"),
        ({"ends_at": start.isoformat()}, "ends_at"),
        ({"goal": {"kind": "most_likes", "value": 5}}, "goal.kind"),
        ({"goal": {"kind": "top_n", "value": 0}}, "goal.value"),
        ({"starts_at": "2030-01-01T00:00:00"}, "starts_at"),
        ({"content_ids": []}, "content_ids"),
        ({"tenant_id": "x"}, "tenant_id"),
    ]:
        r = await admin.post("/v1/challenges", json={**good, **patch})
        assert r.status_code == 422, (patch, r.text)
        assert field in [d["field"] for d in r.json()["error"]["details"]], (patch, r.json())
    assert (await admin.get("/v1/challenges")).json()["items"] == []
    emp = await gam.as_(new_tenant, "ann")
    assert (await emp.post("/v1/challenges", json=good)).status_code == 403


async def test_badges_once_at_configurable_thresholds(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    admin = await gam.as_(t, "boss", "admin")
    r = await admin.put("/v1/rules", json={"badges": {"click_milestone": 3, "share_milestone": 2}})
    assert r.status_code == 200, r.text
    await gam.apply(share(t, "ann"))
    await gam.apply(share(t, "ann"), click(t, "ann"), click(t, "ann"))
    await gam.apply(click(t, "ann"), click(t, "ann"), share(t, "ann"), conversion(t, "ann", "lead"))
    await gam.apply(conversion(t, "ann", "sale"))
    ann = await gam.as_(t, "ann")
    mine = (await ann.get("/v1/badges/me")).json()
    assert [b["badge"] for b in mine["items"]] == [
        "first_share",
        "share_milestone",
        "click_milestone",
        "first_conversion",
    ]
    assert mine["counts"] == {"shares": 3, "clicks": 4, "conversions": 2, "streak_weeks": 1}
    events = await gam.scalar(
        "SELECT count(*) FROM outbox WHERE tenant_id = :t AND event_type LIKE '%badge.earned%'", t=t
    )
    assert events == 4
    catalogue = (await ann.get("/v1/badges")).json()["items"]
    assert {b["badge"]: b["threshold"] for b in catalogue} == {
        "first_share": 1,
        "share_milestone": 2,
        "click_milestone": 3,
        "first_conversion": 1,
        "sharing_streak": 4,
    }


async def test_four_week_sharing_streak(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    monday = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    weeks = [monday + timedelta(days=7 * i + (i % 3)) for i in range(4)]
    await gam.apply(share(t, "bob", at=weeks[0]), share(t, "bob", at=weeks[0] + timedelta(days=1)))
    await gam.apply(share(t, "bob", at=weeks[1]))
    await gam.apply(share(t, "bob", at=weeks[2]))
    bob = await gam.as_(t, "bob")
    assert "sharing_streak" not in [b["badge"] for b in (await bob.get("/v1/badges/me")).json()["items"]]
    await gam.apply(share(t, "bob", at=weeks[3]))
    mine = (await bob.get("/v1/badges/me")).json()
    assert "sharing_streak" in [b["badge"] for b in mine["items"]] and mine["counts"]["streak_weeks"] == 4
    # a gap restarts the streak
    await gam.apply(share(t, "cy", at=weeks[0]), share(t, "cy", at=weeks[2]), share(t, "cy", at=weeks[3]))
    cy = (await (await gam.as_(t, "cy")).get("/v1/badges/me")).json()
    assert cy["counts"]["streak_weeks"] == 2


async def test_challenge_points_carry_the_members_team_and_rank(gam: Gam, new_tenant: str) -> None:
    """A challenge's totals row takes team and rank from the person's members row when points are
    posted (hidden or not enrolled: not ranked; no row: ranked, no team), as the window totals do."""
    t = new_tenant
    c = await create(gam, t)
    await gam.apply(
        membership(t, "hid", leaderboard="hidden", team="red"),
        membership(t, "out", enrolled=False, team="blue"),
        membership(t, "ann", leaderboard="anonymous", team="red"),
    )
    await gam.apply(share(t, "hid"), share(t, "out"), share(t, "ann"), share(t, "new"))
    rows = await gam.rows(
        "SELECT employee_id, team, ranked FROM challenge_totals WHERE challenge_id = :c ORDER BY employee_id",
        c=c["id"],
    )
    assert [tuple(r) for r in rows] == [
        ("ann", "red", True),
        ("hid", "red", False),
        ("new", None, True),
        ("out", "blue", False),
    ]
