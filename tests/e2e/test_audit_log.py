"""Admin actions are audited end to end (issue 13): settings, approvals, rejections, erasures,
scoring rules; admins read them (employees may not); an erased admin's entries stay without them."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import E2EStack


async def _entries(client: Any, service: str, **params: Any) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/audit/{service}", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def test_admin_actions_are_in_each_services_audit_log(stack: E2EStack, new_tenant: str) -> None:
    t = new_tenant
    admin = stack.client("content", stack.token(t, "boss", "admin"))
    gone = stack.client("content", stack.token(t, "temp", "admin"))
    pia = stack.client("content", stack.token(t, "pia", "employee", team="x"))
    rules_admin = stack.client("gamification", stack.token(t, "boss", "admin"))
    async with admin, gone, pia, rules_admin:
        assert (await admin.put("/v1/tenant/settings", json={"base_currency": "USD"})).status_code == 200
        assert (await admin.put("/v1/tenant/settings", json={"base_currency": "USD"})).status_code == 200  # no change
        r = await admin.put("/v1/tenant/settings", json={"base_currency": "GBP", "audit_retention_days": 90})
        assert r.status_code == 200, r.text
        ideas = []
        for title in ("one", "two"):
            r = await pia.post("/v1/content/suggestions", json={"title": title, "url": "https://example.com/" + title})
            ideas.append(r.json()["id"])
        assert (await gone.post(f"/v1/content/{ideas[0]}/approve")).status_code == 200
        assert (await admin.post(f"/v1/content/{ideas[1]}/reject", json={"reason": "off topic"})).status_code == 200
        assert (await admin.delete("/v1/members/temp")).status_code == 204

        entries = await _entries(admin, "content")
        assert [(e["action"], e["actor"], e["target"]) for e in entries] == [
            ("member.erased", "boss", None),
            ("suggestion.rejected", "boss", ideas[1]),
            ("suggestion.approved", "erased", ideas[0]),  # temp's approval: kept, without temp
            ("tenant_settings.updated", "boss", None),
            ("tenant_settings.updated", "boss", None),  # two changes; the repeat changed nothing
        ]
        latest, first = entries[3], entries[4]
        assert first["before"] is None and first["after"]["base_currency"] == "USD"
        assert latest["before"]["base_currency"] == "USD" and latest["after"]["base_currency"] == "GBP"
        assert entries[1]["after"] == {"reason": "off topic"}
        only = await _entries(admin, "content", action="tenant_settings.updated", limit=1)
        assert only == [latest]
        r = await pia.get("/v1/audit/content")
        assert r.status_code == 403

        r = await rules_admin.put("/v1/rules", json={"points": {"share": 12}})
        assert r.status_code in (200, 201), r.text
        (rules,) = await _entries(rules_admin, "gamification")
        assert rules["action"] == "rules.updated" and rules["after"]["body"]["points"]["share"] == 12
