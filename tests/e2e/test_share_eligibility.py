"""Share eligibility through the running services (issue 13): an employee outside the target team
gets 403 on share, earns nothing, and the board never showed the item; a second network's share of
one item earns no second share points under the default rules."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import E2EStack
from tests.e2e.test_content_board import board, create
from tests.support.helpers import eventually


async def share(client: httpx.AsyncClient, content_id: str, network: str = "linkedin") -> httpx.Response:
    return await client.post("/v1/shares", json={"content_id": content_id, "network": network})


async def test_outside_the_target_team_a_share_is_refused_and_earns_nothing(stack: E2EStack, new_tenant: str) -> None:
    t = new_tenant
    admin = stack.client("content", stack.token(t, "boss", "admin"))
    ann_token = stack.token(t, "ann", "employee", team="team-a", name="Ann A.")
    ben_token = stack.token(t, "ben", "employee", team="team-b", name="Ben B.")
    async with admin, stack.client("content", ann_token) as ann_board:
        for_b = await create(admin, title="Bravo plan", audience={"teams": ["team-b"]})
        for_all = await create(admin, title="Everyone news")
        seen, _ = await board(ann_board)
        assert for_b["id"] not in {c["id"] for c in seen} and for_all["id"] in {c["id"] for c in seen}

    async with stack.client("sharing", ben_token) as ben, stack.client("sharing", ann_token) as ann:

        async def ben_shares() -> httpx.Response | None:  # team B's own share: sharing has the copy
            r = await share(ben, for_b["id"])
            return None if r.status_code == 404 else r

        r = await eventually(ben_shares, timeout=15, what="sharing learns team B's item")
        assert r.status_code == 201, r.text

        r = await share(ann, for_b["id"])
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "not_targeted"
        assert (await share(ann, for_b["id"], "x")).status_code == 403
        mine = (await ann.get("/v1/shares")).json()["items"]
        assert mine == []

        async def ann_shares_everyone_news() -> httpx.Response | None:
            r = await share(ann, for_all["id"])
            return None if r.status_code == 404 else r

        first = await eventually(ann_shares_everyone_news, timeout=15, what="sharing learns the item for all")
        assert first.status_code == 201, first.text
        second = await share(ann, for_all["id"], "x")  # another network: a share, not a second credit
        assert second.status_code == 201, second.text

    async with stack.client("gamification", ann_token) as gam:

        async def both_scored() -> dict[str, Any] | None:
            me = (await gam.get("/v1/points/me")).json()
            return me if len(me["items"]) == 2 else None

        # one answer is one snapshot (features.points.my_points): the total agrees with the entries
        me = await eventually(both_scored, timeout=15, what="ann's two shares in her ledger")
        ledger = [(i["points"], i["reason"], i["rule_version"], i["capped"], i["occurred_at"]) for i in me["items"]]
        assert me["points"] == 10, (me["points"], ledger)
        assert sorted(i["points"] for i in me["items"]) == [0, 10], ledger
        assert {i["content_id"] for i in me["items"]} == {for_all["id"]}  # nothing for team B's item

    async with stack.client("gamification", stack.token(t, "boss", "admin")) as gam_admin:

        async def board_of_two() -> list[tuple[str, int]] | None:
            r = await gam_admin.get("/v1/leaderboard", params={"window": "all"})
            rows = [(i["employee_id"], i["points"]) for i in r.json()["items"]]
            return rows if len(rows) == 2 else None

        rows = await eventually(board_of_two, timeout=15, what="the leaderboard")
        assert sorted(rows) == [("ann", 10), ("ben", 10)]
