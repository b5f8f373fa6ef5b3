"""Rewards against the real database: 50 concurrent redemptions of a stock of 10, concurrent
spending of one balance, idempotency, fulfil/cancel with a refund through the ledger, bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.integration.test_gamification_support import Gam, click, gam, gam_url, share

__all__ = ["gam", "gam_url"]


async def give(g: Gam, tenant: str, emp: str, points: int) -> None:
    """``points`` (>= 10) as one share and clicks."""
    await g.apply(share(tenant, emp), *[click(tenant, emp) for _ in range(points - 10)])


async def new_reward(g: Gam, tenant: str, **body: Any) -> dict[str, Any]:
    admin = await g.as_(tenant, "boss", "admin")
    r = await admin.post("/v1/rewards", json={"name": "Mug", "cost_points": 10, "stock": 10, **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def ledger_is_the_truth(g: Gam, tenant: str) -> None:
    rows = await g.rows(
        """
        SELECT b.employee_id, b.balance, (SELECT COALESCE(SUM(balance_delta), 0) FROM ledger l
                                          WHERE l.tenant_id = b.tenant_id AND l.employee_id = b.employee_id) AS s
        FROM balances b WHERE b.tenant_id = :t
        """,
        t=tenant,
    )
    assert rows and all(r.balance == r.s and r.balance >= 0 for r in rows), rows


async def test_fifty_concurrent_redemptions_of_ten_in_stock(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    emps = [f"e{i:02d}" for i in range(50)]
    for e in emps:
        await give(gam, t, e, 15)
    reward = await new_reward(gam, t, stock=10, cost_points=10, value={"amount": "12.50", "currency": "EUR"})
    clients = [await gam.as_(t, e) for e in emps]

    async def redeem(c: Any) -> int:
        r = await c.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code in (201, 409), r.text
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "out_of_stock"
        return int(r.status_code)

    statuses = await asyncio.gather(*(redeem(c) for c in clients))
    assert statuses.count(201) == 10 and statuses.count(409) == 40
    assert await gam.scalar("SELECT stock FROM rewards WHERE id = :i", i=reward["id"]) == 0
    assert await gam.scalar("SELECT count(*) FROM redemptions WHERE reward_id = :i", i=reward["id"]) == 10
    assert await gam.scalar("SELECT count(*) FROM balances WHERE tenant_id = :t AND balance = 5", t=t) == 10
    assert await gam.scalar("SELECT count(*) FROM balances WHERE tenant_id = :t AND balance = 15", t=t) == 40
    events = await gam.scalar(
        "SELECT count(*) FROM outbox WHERE tenant_id = :t AND event_type LIKE '%reward.redeemed%'", t=t
    )
    assert events == 10
    await ledger_is_the_truth(gam, t)


async def test_concurrent_spending_never_takes_a_balance_below_zero(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await give(gam, t, "ann", 35)
    reward = await new_reward(gam, t, stock=100, cost_points=10)
    c = await gam.as_(t, "ann")
    rs = await asyncio.gather(
        *(c.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": f"k{i}"}) for i in range(12))
    )
    codes = sorted(r.status_code for r in rs)
    assert codes.count(201) == 3 and codes.count(409) == 9
    assert {r.json()["error"]["code"] for r in rs if r.status_code == 409} == {"insufficient_points"}
    me = (await c.get("/v1/points/me")).json()
    assert me["balance"] == 5 and me["points"] == 35  # spending does not move the board
    assert await gam.scalar("SELECT stock FROM rewards WHERE id = :i", i=reward["id"]) == 97
    await ledger_is_the_truth(gam, t)


async def test_idempotency_key_replays_the_original(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await give(gam, t, "bob", 30)
    reward = await new_reward(gam, t)
    other = await new_reward(gam, t)
    c = await gam.as_(t, "bob")
    first = await c.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": "same"})
    assert first.status_code == 201, first.text
    again = await asyncio.gather(
        *(c.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": "same"}) for _ in range(5))
    )
    assert all(r.status_code == 201 and r.json() == first.json() for r in again)
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in again)
    r = await c.post(f"/v1/rewards/{other['id']}/redeem", headers={"Idempotency-Key": "same"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    r = await c.post(f"/v1/rewards/{reward['id']}/redeem")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    assert (await c.get("/v1/points/me")).json()["balance"] == 20
    # a different person may use the same key
    await give(gam, t, "cy", 10)
    r = await (await gam.as_(t, "cy")).post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": "same"})
    assert r.status_code == 201 and r.json()["employee_id"] == "cy"


async def test_fulfil_and_cancel_refund_through_the_ledger(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await give(gam, t, "dee", 25)
    reward = await new_reward(gam, t, stock=2, cost_points=10)
    c = await gam.as_(t, "dee")
    admin = await gam.as_(t, "boss", "admin")
    a = (await c.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": "a"})).json()
    b = (await c.post(f"/v1/rewards/{reward['id']}/redeem", headers={"Idempotency-Key": "b"})).json()
    assert (await c.get("/v1/points/me")).json()["balance"] == 5
    assert (await c.post(f"/v1/redemptions/{a['id']}/fulfil")).status_code == 403
    r = await admin.post(f"/v1/redemptions/{a['id']}/fulfil")
    assert r.status_code == 200 and r.json()["status"] == "fulfilled"
    r = await admin.post(f"/v1/redemptions/{b['id']}/cancel", json={"reason": "changed mind"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    for path, code in [
        (f"{a['id']}/cancel", "already_fulfilled"),
        (f"{b['id']}/cancel", "already_cancelled"),
        (f"{b['id']}/fulfil", "already_cancelled"),
    ]:
        r = await admin.post(f"/v1/redemptions/{path}")
        assert r.status_code == 409 and r.json()["error"]["code"] == code
    assert (await admin.post(f"/v1/redemptions/{uuid.uuid4()}/cancel")).status_code == 404
    other_admin = await gam.as_("t-elsewhere", "boss", "admin")
    assert (await other_admin.post(f"/v1/redemptions/{a['id']}/fulfil")).status_code == 404
    assert (await other_admin.get(f"/v1/rewards/{reward['id']}")).status_code == 404
    me = (await c.get("/v1/points/me")).json()
    assert me["balance"] == 15
    assert [i["type"] for i in me["items"][:3]] == ["refund", "redemption", "redemption"]
    assert await gam.scalar("SELECT stock FROM rewards WHERE id = :i", i=reward["id"]) == 1
    mine = (await c.get("/v1/redemptions")).json()["items"]
    assert {r["status"] for r in mine} == {"fulfilled", "cancelled"}
    assert len((await admin.get("/v1/redemptions", params={"status": "cancelled"})).json()["items"]) == 1
    events = await gam.rows(
        "SELECT event_type FROM outbox WHERE tenant_id = :t AND event_type LIKE '%reward%' ORDER BY id", t=t
    )
    # fulfilling tells the employee (notifications): one reward.fulfilled, in the same transaction
    assert [e.event_type.split(".")[-2] for e in events] == [
        "redeemed",
        "redeemed",
        "fulfilled",
        "redemption_cancelled",
    ]
    await ledger_is_the_truth(gam, t)


async def test_bad_reward_input_and_unknown_rewards(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    admin = await gam.as_(t, "boss", "admin")
    for body, field in [
        ({"name": "x", "cost_points": 0, "stock": 1}, "cost_points"),
        ({"name": "x", "cost_points": 5, "stock": -1}, "stock"),
        ({"name": "", "cost_points": 5, "stock": 1}, "name"),
        ({"name": "x", "cost_points": 5, "stock": 1, "value": {"amount": "1", "currency": "XXX"}}, "value.currency"),
        ({"name": "x", "cost_points": 5, "stock": 1, "tenant_id": "t"}, "tenant_id"),
    ]:
        r = await admin.post("/v1/rewards", json=body)
        assert r.status_code == 422 and field in [d["field"] for d in r.json()["error"]["details"]], (body, r.text)
    assert (await admin.get("/v1/rewards")).json()["items"] == []
    await give(gam, t, "eve", 50)
    c = await gam.as_(t, "eve")
    r = await c.post(f"/v1/rewards/{uuid.uuid4()}/redeem", headers={"Idempotency-Key": "k"})
    assert r.status_code == 404
    empty = await new_reward(gam, t, stock=0)
    r = await c.post(f"/v1/rewards/{empty['id']}/redeem", headers={"Idempotency-Key": "k"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "out_of_stock"
    assert (await c.get("/v1/points/me")).json()["balance"] == 50
    assert await gam.scalar("SELECT count(*) FROM redemptions WHERE tenant_id = :t", t=t) == 0
    assert (await c.post("/v1/rewards", json={"name": "x", "cost_points": 5, "stock": 1})).status_code == 403
    # pages
    for i in range(3):
        await new_reward(gam, t, name=f"r{i}")
    p1 = (await c.get("/v1/rewards", params={"limit": 2})).json()
    p2 = (await c.get("/v1/rewards", params={"limit": 2, "cursor": p1["next_cursor"]})).json()
    assert len(p1["items"]) == 2 and len(p2["items"]) == 2 and p2["next_cursor"] is None
    assert {i["id"] for i in p1["items"]}.isdisjoint({i["id"] for i in p2["items"]})
