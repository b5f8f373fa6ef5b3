"""Gamification through the running services: a challenge finalised by the worker's scheduler, a
reward redeemed and cancelled, an admin reversal; all from real shares and clicks."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import E2EStack
from tests.e2e.test_walking_skeleton import publish_and_share
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, visitor_ip


async def test_challenge_reward_and_reversal_end_to_end(stack: E2EStack, new_tenant: str) -> None:
    started = time.monotonic()
    t = new_tenant
    admin_token = stack.token(t, "admin-1", "admin")
    async with stack.client("gamification", admin_token) as admin:
        now = datetime.now(UTC)
        r = await admin.post(
            "/v1/challenges",
            json={
                "name": "Sprint",
                "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(seconds=6)).isoformat(),
                "goal": {"kind": "top_n", "value": 1},
            },
        )
        assert r.status_code == 201, r.text
        challenge = r.json()
        r = await admin.post("/v1/rewards", json={"name": "Mug", "cost_points": 8, "stock": 1})
        reward = r.json()

    _, codes = await publish_and_share(stack, t)  # alice and bob: 10 points each
    async with stack.client("sharing") as sharing:
        for i in range(2):
            r = await sharing.get(
                f"/r/{codes['alice']}",
                headers={
                    "X-Forwarded-For": visitor_ip(i, 41),
                    "User-Agent": BROWSER_UAS[i],
                    "Accept-Language": ACCEPT_LANGUAGE,
                },
            )
            assert r.status_code == 302

    async with stack.client("gamification", stack.token(t, "alice", "employee")) as alice:

        async def points() -> Any:
            me = (await alice.get("/v1/points/me")).json()
            return me if me["points"] == 12 else None

        me = await eventually(points, timeout=10, what="alice's share and clicks in her ledger")
        click_award = next(i for i in me["items"] if i["action"] == "click")
        r = await alice.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        redemption = r.json()
        async with stack.client("gamification", stack.token(t, "bob", "employee")) as bob:
            r = await bob.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": "b"})
            assert r.status_code == 409 and r.json()["error"]["code"] == "out_of_stock"

        async with stack.client("gamification", admin_token) as admin:
            r = await admin.post(
                "/v1/points/reversals",
                json={"employee_id": "alice", "event_id": click_award["event_id"], "reason": "test traffic"},
            )
            assert r.status_code == 201, r.text
            r = await admin.post(f"/v1/redemptions/{redemption['id']}/cancel", json={"reason": "out of mugs"})
            assert r.status_code == 200 and r.json()["status"] == "cancelled"

            async def winners() -> Any:
                d = (await admin.get(f"/v1/challenges/{challenge['id']}")).json()
                return d["winners"]

            won = await eventually(winners, timeout=20, interval=0.5, what="the worker finalises the challenge")
            assert [(w["rank"], w["employee_id"], w["points"]) for w in won] == [(1, "alice", 11)]

        me = (await alice.get("/v1/points/me")).json()
        assert (me["points"], me["balance"]) == (11, 11)
        assert [i["type"] for i in me["items"][:3]] == ["refund", "reversal", "redemption"]
        badges = (await alice.get("/v1/badges/me")).json()
        assert [b["badge"] for b in badges["items"]] == ["first_share"]
    assert time.monotonic() - started < 30
