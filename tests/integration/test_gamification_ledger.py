"""The ledger against the real database: awards per rule version, caps, multipliers, reversals,
every total a sum of the ledger, and the rules endpoints' bad input."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from advocacy_common.events.sharing import Verdict
from tests.integration.test_gamification_support import (
    Gam,
    click,
    conversion,
    gam,
    gam_url,
    invalidate,
    now,
    share,
    suggestion,
    tenant_settings,
    uid,
)

__all__ = ["gam", "gam_url"]


async def consistent(g: Gam, tenant: str) -> None:
    """Every derived figure equals the sum of its ledger rows."""
    bad = await g.rows(
        """
        SELECT b.employee_id, b.balance, COALESCE(SUM(l.balance_delta), 0) AS ledger
        FROM balances b LEFT JOIN ledger l ON l.tenant_id = b.tenant_id AND l.employee_id = b.employee_id
        WHERE b.tenant_id = :t GROUP BY b.employee_id, b.balance HAVING b.balance <> COALESCE(SUM(l.balance_delta), 0)
        """,
        t=tenant,
    )
    assert bad == []
    bad = await g.rows(
        """
        SELECT l.employee_id, SUM(l.points) AS ledger, MAX(p.points) AS total
        FROM ledger l LEFT JOIN points_totals p
          ON p.tenant_id = l.tenant_id AND p.employee_id = l.employee_id AND p.window = 'all'
        WHERE l.tenant_id = :t GROUP BY l.employee_id HAVING SUM(l.points) <> COALESCE(MAX(p.points), 0)
        """,
        t=tenant,
    )
    assert bad == []
    assert await g.scalar("SELECT count(*) FROM balances WHERE balance < 0") == 0


async def my_points(g: Gam, tenant: str, emp: str) -> dict[str, Any]:
    c = await g.as_(tenant, emp)
    r = await c.get("/v1/points/me")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_default_rules_award_each_action_once(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    k = click(t, "ann")
    events = [
        share(t, "ann"),
        k,
        click(t, "ann", verdict=Verdict.bot),
        click(t, "ann", verdict=Verdict.duplicate),
        conversion(t, "ann", "sale"),
        conversion(t, "ann", "signup"),
        suggestion(t, "ann"),
    ]
    await gam.apply(*events)
    await gam.apply(k, events[0])  # redelivered: nothing more
    me = await my_points(gam, t, "ann")
    assert me["points"] == me["balance"] == 10 + 1 + 50 + 20 + 15
    assert sorted(i["action"] for i in me["items"]) == [
        "click",
        "conversion",
        "conversion",
        "share",
        "suggestion_approved",
    ]
    assert {i["rule_version"] for i in me["items"]} == {0}
    assert all(i["event_id"] for i in me["items"])
    await consistent(gam, t)


async def test_rule_version_by_effective_time_never_retroactive(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    admin = await gam.as_(t, "boss", "admin")
    before = now() - timedelta(seconds=5)
    r = await admin.put("/v1/rules", json={"points": {"share": 25, "click": 3}})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    later = now() + timedelta(hours=1)
    r = await admin.put("/v1/rules", json={"points": {"share": 40}, "effective_at": later.isoformat()})
    assert r.json()["version"] == 2
    await gam.apply(
        share(t, "bob", at=before), share(t, "bob"), click(t, "bob"), share(t, "bob", at=later + timedelta(1))
    )
    me = await my_points(gam, t, "bob")
    by_version = sorted((i["rule_version"], i["points"]) for i in me["items"])
    assert by_version == [(0, 10), (1, 3), (1, 25), (2, 40)]
    r = await admin.get("/v1/rules")
    body = r.json()
    assert body["version"] == 1 and body["points"]["share"] == 25 and body["points"]["conversion"]["sale"] == 50
    assert [s["version"] for s in body["scheduled"]] == [2]
    await consistent(gam, t)


async def test_daily_cap_in_the_tenant_time_zone(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(tenant_settings(t, time_zone="Pacific/Auckland"))
    admin = await gam.as_(t, "boss", "admin")
    r = await admin.put("/v1/rules", json={"daily_caps": {"click": 2}})
    assert r.status_code == 200, r.text
    # 21:00 to 22:30 on one Auckland day, then 00:30 the next: in UTC these are all one day
    day = (now() + timedelta(days=2)).astimezone(ZoneInfo("Pacific/Auckland")).date()
    base = datetime.combine(day, time(21), ZoneInfo("Pacific/Auckland")).astimezone(UTC)
    assert (base + timedelta(minutes=210)).date() == base.date()  # one UTC day, two Auckland days
    same_day = [click(t, "cy", at=base + timedelta(minutes=m)) for m in (0, 30, 60, 90)]
    next_day = [click(t, "cy", at=base + timedelta(minutes=210))]
    await gam.apply(*same_day[:3])
    await gam.apply(same_day[3], *next_day)
    me = await my_points(gam, t, "cy")
    capped = sorted((i["occurred_at"], i["points"], i["capped"]) for i in me["items"])
    assert [(p, c) for _, p, c in capped] == [(1, False), (1, False), (0, True), (0, True), (1, False)]
    assert me["points"] == 3
    await consistent(gam, t)


async def test_campaign_multiplier_for_chosen_content_and_dates(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    admin = await gam.as_(t, "boss", "admin")
    start = now() + timedelta(minutes=1)
    r = await admin.put(
        "/v1/rules",
        json={
            "multipliers": [
                {"name": "launch", "factor": "2", "content_ids": ["launch"]},
                {
                    "name": "week",
                    "factor": "1.5",
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(days=1)).isoformat(),
                },
            ],
            "share_points_per": "network",  # each share below earns (the default: once per item)
        },
    )
    assert r.status_code == 200, r.text
    await gam.apply(
        share(t, "dee", content="launch"),  # 20
        share(t, "dee", content="other"),  # 10 (before the dated campaign)
        share(t, "dee", content="other", at=start + timedelta(hours=1)),  # 15
        share(t, "dee", content="launch", at=start + timedelta(hours=1)),  # max(2, 1.5) -> 20
    )
    assert (await my_points(gam, t, "dee"))["points"] == 65


async def test_invalidated_click_is_reversed_once(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    k = click(t, "eve")
    await gam.apply(share(t, "eve"), k, click(t, "eve"))
    inv = invalidate(t, "eve", k.data.click_id)
    await gam.apply(inv)
    await gam.apply(invalidate(t, "eve", k.data.click_id))  # a second invalidation: nothing
    me = await my_points(gam, t, "eve")
    assert me["points"] == me["balance"] == 11
    reversal = [i for i in me["items"] if i["type"] == "reversal"]
    assert len(reversal) == 1 and reversal[0]["points"] == -1 and "fraud" in reversal[0]["reason"]
    award = next(i for i in me["items"] if i["ref"] == k.data.click_id and i["type"] == "award")
    assert reversal[0]["reverses_entry_id"] == award["id"]
    await consistent(gam, t)


async def test_an_invalidated_click_is_found_by_its_event_id_not_its_ref(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    k = click(t, "gus")
    await gam.apply(share(t, "gus"), k)
    async with gam.sm() as s, s.begin():  # ``ref`` is not what finds the award (no index on it)
        await s.execute(
            sa.text("UPDATE ledger SET ref = NULL WHERE tenant_id = :t AND event_id = :e"), {"t": t, "e": k.id}
        )
    await gam.apply(invalidate(t, "gus", k.data.click_id))
    me = await my_points(gam, t, "gus")
    assert me["points"] == me["balance"] == 10
    assert [i["points"] for i in me["items"] if i["type"] == "reversal"] == [-1]
    await consistent(gam, t)


async def test_admin_reversal_once_and_errors(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    s = share(t, "fay")
    await gam.apply(s, click(t, "fay"))
    admin = await gam.as_(t, "boss", "admin")
    body = {"employee_id": "fay", "event_id": s.id, "reason": "duplicate account"}
    r = await admin.post("/v1/points/reversals", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["items"][0]["points"] == -10
    r = await admin.post("/v1/points/reversals", json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_reversed"
    r = await admin.post("/v1/points/reversals", json={**body, "event_id": "nope"})
    assert r.status_code == 404
    other = await gam.as_(uid("t"), "boss", "admin")
    assert (await other.post("/v1/points/reversals", json={**body, "event_id": uid()})).status_code == 404
    emp = await gam.as_(t, "fay")
    assert (await emp.post("/v1/points/reversals", json=body)).status_code == 403
    r = await admin.post("/v1/points/reversals", json={"employee_id": "fay", "event_id": s.id})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "reason"
    assert (await my_points(gam, t, "fay"))["points"] == 1
    await consistent(gam, t)


async def test_bad_rules_are_422_naming_the_field_and_change_nothing(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    admin = await gam.as_(t, "boss", "admin")
    cases = [
        ({"points": {"share": -1}}, "points.share"),
        ({"points": {"conversion": {"sale": -5}}}, "points.conversion.sale"),
        ({"daily_caps": {"click": 0}}, "daily_caps.click"),
        ({"daily_caps": {"hug": 3}}, "daily_caps.hug"),
        ({"multipliers": [{"factor": "0"}]}, "multipliers.0.factor"),
        (
            {"multipliers": [{"factor": "2", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}]},
            "multipliers.0",
        ),
        ({"tenant_id": "other"}, "tenant_id"),
        ({"effective_at": "2001-01-01T00:00:00Z"}, "effective_at"),
    ]
    for body, field in cases:
        r = await admin.put("/v1/rules", json=body)
        assert r.status_code == 422, (body, r.text)
        fields = [d["field"] for d in r.json()["error"]["details"]]
        assert field in fields, (body, fields)
    assert await gam.scalar("SELECT count(*) FROM rule_sets WHERE tenant_id = :t", t=t) == 0
    emp = await gam.as_(t, "fay")
    assert (await emp.put("/v1/rules", json={})).status_code == 403
    assert (await emp.get("/v1/rules")).json()["version"] == 0
