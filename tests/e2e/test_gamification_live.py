"""Issue 5 acceptance through the four services: a click on /r/{code} changes the leaderboard and
reaches an open SSE stream of the board (opened with a stream ticket), within seconds."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import E2EStack
from tests.e2e.test_walking_skeleton import publish_and_share
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, visitor_ip
from tests.support.sse import SSE


def points_of(data: dict[str, Any], emp: str) -> int | None:
    return next((i["points"] for i in data["items"] if i["employee_id"] == emp), None)


async def test_a_click_moves_the_board_and_the_live_stream(stack: E2EStack, new_tenant: str) -> None:
    started = time.monotonic()
    _, codes = await publish_and_share(stack, new_tenant)
    viewer = stack.token(new_tenant, "wall-screen", "employee", team="hq", name="Office wall")
    async with stack.client("gamification", viewer) as gam:
        r = await gam.post("/v1/leaderboard/stream-tickets")
        assert r.status_code == 201, r.text
        ticket = r.json()["ticket"]
        gam.headers.pop("Authorization")  # EventSource sends no headers: the ticket is enough
        async with gam.stream(
            "GET", "/v1/leaderboard/stream", params={"ticket": ticket, "window": "week"}, timeout=30
        ) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            sse = SSE(resp)
            _, before = await sse.until(lambda d: points_of(d, "alice") == 10, timeout=15)  # her share
            assert before["window"] == "week" and before["starts_at"] is not None
            async with stack.client("sharing") as sharing:
                r = await sharing.get(
                    f"/r/{codes['alice']}",
                    headers={
                        "X-Forwarded-For": visitor_ip(1, 36),
                        "User-Agent": BROWSER_UAS[0],
                        "Accept-Language": ACCEPT_LANGUAGE,
                    },
                )
                assert r.status_code == 302
            redirected = time.monotonic()
            arrived, after = await sse.until(lambda d: points_of(d, "alice") == 11, timeout=10)
            assert after["items"][0]["employee_id"] == "alice" and after["items"][0]["rank"] == 1
            latency = arrived - redirected
            assert latency < 5, latency

        admin = stack.token(new_tenant, "admin-1", "admin")
        async with stack.client("gamification", admin) as g:

            async def board_moved() -> bool:
                r = await g.get("/v1/leaderboard", params={"window": "week"})
                return [(i["employee_id"], i["points"]) for i in r.json()["items"]] == [("alice", 11), ("bob", 10)]

            await eventually(board_moved, timeout=5, what="leaderboard shows the click")
    async with stack.client("gamification", stack.token(new_tenant, "bob", "employee")) as bob:
        me = (await bob.get("/v1/leaderboard/me", params={"window": "week"})).json()
        assert (me["rank"], me["points"], me["gap_to_next"]) == (2, 10, 1)
    assert time.monotonic() - started < 30
