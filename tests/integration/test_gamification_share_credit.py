"""Share points once per employee and content item by default, per network when the tenant's rules
say so; the ledger of earlier awards is never re-scored; simulate shows the effect (issue 13)."""

from __future__ import annotations

from typing import Any

from tests.integration.test_gamification_support import Gam, gam, gam_url, share

__all__ = ["gam", "gam_url"]  # fixtures


async def points_of(g: Gam, tenant: str, emp: str) -> dict[str, Any]:
    r = await (await g.as_(tenant, emp)).get("/v1/points/me")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_second_network_share_of_an_item_earns_nothing_by_default(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(share(t, "amy", content="launch"))  # linkedin
    await gam.apply(share(t, "amy", content="launch"), share(t, "amy", content="other"))  # x, then another item
    await gam.apply(share(t, "ben", content="launch"))  # someone else's share of the item still counts
    amy = await points_of(gam, t, "amy")
    assert amy["points"] == 20
    repeat = [i for i in amy["items"] if i["points"] == 0]
    assert len(repeat) == 1 and repeat[0]["content_id"] == "launch" and "already credited" in repeat[0]["reason"]
    assert (await points_of(gam, t, "ben"))["points"] == 10


async def test_a_tenant_may_credit_every_network_and_simulate_shows_either(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(share(t, "cat", content="c1"), share(t, "cat", content="c1"), share(t, "cat", content="c1"))
    assert (await points_of(gam, t, "cat"))["points"] == 10
    admin = await gam.as_(t, "boss", "admin")
    r = await admin.post("/v1/rules/simulate", params={"window": "week"}, json={"share_points_per": "network"})
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert (row["employee_id"], row["points"], row["current_points"]) == ("cat", 30, 10)
    r = await admin.post("/v1/rules/simulate", params={"window": "week"}, json={"share_points_per": "everything"})
    assert r.status_code == 422, r.text
    r = await admin.put("/v1/rules", json={"share_points_per": "network"})
    assert r.status_code == 200 and r.json()["share_points_per"] == "network", r.text
    await gam.apply(share(t, "cat", content="c1"))
    assert (await points_of(gam, t, "cat"))["points"] == 20  # the earlier repeats keep their 0: never re-scored
    r = await admin.post("/v1/rules/simulate", params={"window": "week"}, json={})  # the default: once per item
    assert [(i["points"], i["current_points"]) for i in r.json()["items"]] == [(10, 20)]
