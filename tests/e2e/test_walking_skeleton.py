"""Issue 2 acceptance: content -> shares -> 1,250 clicks -> exact metrics and leaderboard."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually, send_clicks


async def publish_and_share(stack: E2EStack, tenant: str) -> tuple[str, dict[str, str]]:
    admin = stack.token(tenant, "admin-1", "admin", team="hq", name="Ada Admin")
    async with stack.client("content", admin) as content:
        r = await content.post(
            "/v1/content",
            json={
                "title": "Quarterly launch",
                "url": "https://example.com/launch?ref=news",
                "tags": ["launch"],
            },
        )
        assert r.status_code == 201, r.text
        item = r.json()
        assert item["status"] == "published"
    codes: dict[str, str] = {}
    for sub, team, name in (("alice", "sales", "Alice A."), ("bob", "support", "Bob B.")):
        token = stack.token(tenant, sub, "employee", team=team, name=name)
        async with stack.client("sharing", token) as sharing:

            async def share(sharing: httpx.AsyncClient = sharing) -> dict[str, Any] | None:
                r = await sharing.post("/v1/shares", json={"content_id": item["id"], "network": "linkedin"})
                if r.status_code == 404:  # sharing has not seen content.published yet
                    return None
                assert r.status_code == 201, r.text
                return dict(r.json())

            created = await eventually(share, timeout=15, what="sharing learns the content")
            codes[sub] = created["code"]
            assert created["link"].endswith(f"/r/{created['code']}")
            again = await sharing.post("/v1/shares", json={"content_id": item["id"], "network": "linkedin"})
            assert again.status_code == 200 and again.json()["code"] == created["code"]
    return item["id"], codes


async def numbers(stack: E2EStack, tenant: str) -> dict[str, Any]:
    admin = stack.token(tenant, "admin-1", "admin")
    out: dict[str, Any] = {}
    async with stack.client("metrics", admin) as metrics:
        for sub in ("alice", "bob"):
            r = await metrics.get(f"/v1/metrics/employees/{sub}")
            assert r.status_code == 200, r.text
            out[sub] = r.json()
    async with stack.client("gamification", admin) as gam:
        r = await gam.get("/v1/leaderboard", params={"window": "all"})
        assert r.status_code == 200, r.text
        out["leaderboard"] = [(i["rank"], i["employee_id"], i["points"]) for i in r.json()["items"]]
    return out


def expected(n_alice: int, n_bob: int) -> dict[str, Any]:
    return {
        "alice": (n_alice, 1),
        "bob": (n_bob, 1),
        "leaderboard": [(1, "alice", 10 + n_alice), (2, "bob", 10 + n_bob)],
    }


def summary(n: dict[str, Any]) -> dict[str, Any]:
    return {
        "alice": (n["alice"]["clicks"], n["alice"]["shares"]),
        "bob": (n["bob"]["clicks"], n["bob"]["shares"]),
        "leaderboard": n["leaderboard"],
    }


def click_plan(codes: dict[str, str], n_alice: int, n_bob: int) -> list[tuple[str, int]]:
    plan = [(codes["alice"], i) for i in range(n_alice)] + [(codes["bob"], n_alice + i) for i in range(n_bob)]
    random.Random(7).shuffle(plan)
    return plan


async def test_thousand_clicks_counted_exactly_within_five_seconds(stack: E2EStack, new_tenant: str) -> None:
    _, codes = await publish_and_share(stack, new_tenant)
    statuses = await send_clicks(stack.url("sharing"), click_plan(codes, 1000, 250))
    assert statuses.count(302) == 1250
    last_click = time.monotonic()
    want = expected(1000, 250)

    async def settled() -> bool:
        return summary(await numbers(stack, new_tenant)) == want

    await eventually(settled, timeout=5, interval=0.1, what="metrics and leaderboard reflect every click")
    assert time.monotonic() - last_click < 5
    final = await numbers(stack, new_tenant)
    assert final["alice"]["clicks_by_verdict"]["counted"] == 1000
    assert final["alice"]["clicks_by_verdict"]["bot"] == 0


async def test_killing_consumers_mid_traffic_loses_and_doubles_nothing(stack: E2EStack, new_tenant: str) -> None:
    _, codes = await publish_and_share(stack, new_tenant)
    plan = click_plan(codes, 1000, 250)
    killed: list[str] = []

    async def chaos(done: int) -> None:
        # SIGKILL (no graceful shutdown) in the middle of the traffic, then start again
        for at, svc in ((300, "metrics"), (700, "gamification")):
            if done >= at and svc not in killed:
                killed.append(svc)
                stack.process(svc).kill()
                stack.process(svc).start()

    statuses = await send_clicks(stack.url("sharing"), plan, on_progress=chaos)
    assert statuses.count(302) == 1250
    assert killed == ["metrics", "gamification"]
    await asyncio.to_thread(stack.ensure_running)
    want = expected(1000, 250)

    async def settled() -> bool:
        return summary(await numbers(stack, new_tenant)) == want

    # a restarted consumer rejoins its group first (the embedded broker rebalances slowly)
    await eventually(settled, timeout=60, interval=0.25, what="exact totals after kills")
    # and it stays exact: nothing arrives twice later
    await asyncio.sleep(1.5)
    assert summary(await numbers(stack, new_tenant)) == want
