"""Content e2e: targeting (team A never sees team B's content), scheduling to the second, roll-out
waves and opting out, relevance order after a share."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually


async def board(client: httpx.AsyncClient, **params: Any) -> tuple[list[dict[str, Any]], str | None]:
    items: list[dict[str, Any]] = []
    cursor = None
    notice = None
    while True:
        r = await client.get("/v1/content", params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        notice = page.get("notice")
        cursor = page["next_cursor"]
        if cursor is None:
            return items, notice


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/content", json={"url": "https://example.com/post", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_an_employee_of_team_a_never_sees_team_b_content(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    ann = stack.client("content", stack.token(new_tenant, "ann", "employee", team="team-a"))
    ben = stack.client("content", stack.token(new_tenant, "ben", "employee", team="team-b"))
    nobody = stack.client("content", stack.token(new_tenant, "noa", "employee"))  # no team claim
    async with admin, ann, ben, nobody:
        for_a = await create(admin, title="Alpha launch", audience={"teams": ["team-a"]})
        for_b = [await create(admin, title=f"Bravo secret plan {i}", audience={"teams": ["team-b"]}) for i in range(3)]
        for_both = await create(admin, title="Company news", audience={"teams": ["team-a", "team-b"]})
        for_all = await create(admin, title="Everyone news")
        b_ids = {c["id"] for c in for_b}

        seen_by_a, _ = await board(ann)
        assert {c["id"] for c in seen_by_a} == {for_a["id"], for_both["id"], for_all["id"]}
        seen_by_b, _ = await board(ben)
        assert {c["id"] for c in seen_by_b} == b_ids | {for_both["id"], for_all["id"]}
        seen_by_nobody, _ = await board(nobody)
        assert {c["id"] for c in seen_by_nobody} == {for_all["id"]}
        # not by id, not by search, not by filter, not with the admin's status filter
        for c in for_b:
            assert (await ann.get(f"/v1/content/{c['id']}")).status_code == 404
        assert (await board(ann, q="bravo secret"))[0] == []
        # employees cannot widen their view with the admin's status filter
        assert {c["id"] for c in (await board(ann, status="published"))[0]} == {c["id"] for c in seen_by_a}

        # a scheduled item for team B appears on B's board at its time, to the second, never on A's
        publish_at = datetime.now(UTC) + timedelta(seconds=2)
        later = await create(
            admin, title="Bravo scheduled", audience={"teams": ["team-b"]}, publish_at=publish_at.isoformat()
        )
        assert later["status"] == "scheduled"
        assert later["id"] not in {c["id"] for c in (await board(ben))[0]}

        async def on_b_board() -> bool:
            return later["id"] in {c["id"] for c in (await board(ben))[0]}

        await eventually(on_b_board, timeout=10, interval=0.05, what="the scheduled item is published")
        lateness = time.time() - publish_at.timestamp()
        assert lateness < 1.5, lateness
        item = (await admin.get(f"/v1/content/{later['id']}")).json()
        assert item["status"] == "published"
        published_at = datetime.fromisoformat(item["published_at"])
        assert timedelta(0) <= published_at - publish_at < timedelta(seconds=1)
        assert later["id"] not in {c["id"] for c in (await board(ann))[0]}
        assert (await ann.get(f"/v1/content/{later['id']}")).status_code == 404


async def test_expiry_drops_the_item_to_the_second(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    emp = stack.client("content", stack.token(new_tenant, "eli", "employee", team="t"))
    async with admin, emp:
        expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
        item = await create(admin, title="Flash sale", expires_at=expires_at.isoformat())
        assert item["id"] in {c["id"] for c in (await board(emp))[0]}

        async def expired() -> bool:
            r = await admin.get(f"/v1/content/{item['id']}")
            return bool(r.json()["status"] == "expired")

        await eventually(expired, timeout=10, interval=0.05, what="expiry")
        assert time.time() - expires_at.timestamp() < 1.5
        assert item["id"] not in {c["id"] for c in (await board(emp))[0]}
        assert (await emp.get(f"/v1/content/{item['id']}")).status_code == 404


async def test_waves_and_opting_out_empty_the_board_with_a_notice(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    early = stack.client("content", stack.token(new_tenant, "eva", "employee", team="pilot"))
    late = stack.client("content", stack.token(new_tenant, "lou", "employee", team="wave2"))
    async with admin, early, late:
        news = await create(admin, title="News")
        starts = datetime.now(UTC) + timedelta(days=7)
        r = await admin.post(
            "/v1/waves", json={"name": "Pilot", "starts_at": datetime.now(UTC).isoformat(), "teams": ["pilot"]}
        )
        assert r.status_code == 201, r.text
        r = await admin.post("/v1/waves", json={"name": "Wave 2", "starts_at": starts.isoformat(), "teams": ["wave2"]})
        assert r.status_code == 201, r.text
        wave2 = r.json()
        assert not wave2["started"]

        items, notice = await board(early)
        assert len(items) == 1 and notice is None
        items, notice = await board(late)
        assert items == [] and notice is not None and "Wave 2" in notice and starts.strftime("%Y-%m-%d") in notice
        membership = (await late.get("/v1/me/membership")).json()
        assert membership["board_open"] is False and membership["wave"]["id"] == wave2["id"]
        # nor can they read the item by its id before their wave starts
        assert (await late.get(f"/v1/content/{news['id']}")).status_code == 404

        # the admin moves the wave forward: the board opens
        r = await admin.patch(f"/v1/waves/{wave2['id']}", json={"starts_at": datetime.now(UTC).isoformat()})
        assert r.status_code == 200 and r.json()["started"]
        assert len((await board(late))[0]) == 1

        # opting out stops the board; opting in again brings it back
        r = await early.put(
            "/v1/me/membership", json={"enrolled": False, "programme_roles": [], "leaderboard": "hidden"}
        )
        assert r.status_code == 200 and r.json()["board_open"] is False
        items, notice = await board(early)
        assert items == [] and notice is not None and "opted out" in notice
        assert (await early.get(f"/v1/content/{news['id']}")).status_code == 404
        r = await early.put(
            "/v1/me/membership", json={"enrolled": True, "programme_roles": ["champion"], "leaderboard": "anonymous"}
        )
        assert r.json()["board_open"] is True and r.json()["programme_roles"] == ["champion"]
        assert len((await board(early))[0]) == 1

        # bad input: a wave with nobody in it, a naive time, smuggled fields
        r = await admin.post("/v1/waves", json={"name": "Empty", "starts_at": starts.isoformat()})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "teams"
        r = await admin.post("/v1/waves", json={"name": "Naive", "starts_at": "2030-01-01T00:00:00", "teams": ["x"]})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "starts_at"
        r = await early.put("/v1/me/membership", json={"enrolled": True, "points": 1000})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "points"
        assert (
            await late.post("/v1/waves", json={"name": "x", "starts_at": starts.isoformat(), "teams": ["x"]})
        ).status_code == 403
        # another tenant's wave is a 404
        async with stack.client("content", stack.token(new_tenant + "-x", "boss", "admin")) as other:
            assert (await other.patch(f"/v1/waves/{wave2['id']}", json={"name": "mine"})).status_code == 404
            assert (await other.delete(f"/v1/waves/{wave2['id']}")).status_code == 404
        assert (await admin.delete(f"/v1/waves/{wave2['id']}")).status_code == 204


async def test_followed_topics_and_shares_order_the_board(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    token = stack.token(new_tenant, "fay", "employee", team="t")
    fay = stack.client("content", token)
    async with admin, fay:
        cars = await create(admin, title="Cars", audience={"topics": ["cars"]})
        ai = await create(admin, title="AI", audience={"topics": ["AI"]})
        plain = await create(admin, title="Plain")
        r = await fay.put("/v1/me/topics", json={"topics": ["ai", "AI ", "Cars"]})
        assert r.status_code == 200 and r.json()["topics"] == ["ai", "cars"]
        r = await fay.put("/v1/me/topics", json={"topics": ["ai"]})
        assert (await fay.get("/v1/me/topics")).json() == {"topics": ["ai"]}
        order = [c["id"] for c in (await board(fay))[0]]
        # followed topic first; then the others, newest first (all three are new and unshared)
        assert order == [ai["id"], plain["id"], cars["id"]]

        # fay shares the AI item through sharing: content hears share.created and moves it down
        async with stack.client("sharing", token) as sharing:

            async def share() -> bool:
                r = await sharing.post("/v1/shares", json={"content_id": ai["id"], "network": "linkedin"})
                return r.status_code in (200, 201)

            await eventually(share, timeout=15, what="sharing knows the content")

        async def moved_down() -> bool:
            items = (await board(fay))[0]
            return items[-1]["id"] == ai["id"] and items[-1]["relevance"]["shared"] is True

        await eventually(moved_down, timeout=15, what="the shared item sinks")
