"""Content e2e: suggestions and their review, coaching privacy, policy versions and checks, tenant
settings, bad input (422 naming the field, nothing half-saved), edits and archive."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import E2EStack


def field(r: Any) -> str:
    return str(r.json()["error"]["details"][0]["field"])


async def test_a_proposer_sees_the_rejection_reason(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    admin2 = stack.client("content", stack.token(new_tenant, "chief", "admin"))
    pia = stack.client("content", stack.token(new_tenant, "pia", "employee", team="t"))
    max_ = stack.client("content", stack.token(new_tenant, "max", "employee", team="t"))
    async with admin, admin2, pia, max_:
        r = await pia.post("/v1/content/suggestions", json={"title": "Our new office", "url": "https://example.com/o"})
        assert r.status_code == 201, r.text
        idea = r.json()
        assert idea["status"] == "pending_review" and idea["proposer_id"] == "pia"
        # not on anybody's board while pending
        assert idea["id"] not in {c["id"] for c in (await max_.get("/v1/content")).json()["items"]}
        pending = (await admin.get("/v1/content/suggestions")).json()["items"]
        assert [s["id"] for s in pending] == [idea["id"]]

        r = await admin.post(f"/v1/content/{idea['id']}/reject", json={})
        assert r.status_code == 422 and field(r) == "reason"
        r = await admin.post(f"/v1/content/{idea['id']}/reject", json={"reason": "   "})
        assert r.status_code == 422 and field(r) == "reason"
        assert (await pia.post(f"/v1/content/{idea['id']}/reject", json={"reason": "no"})).status_code == 403
        r = await admin.post(
            f"/v1/content/{idea['id']}/reject", json={"reason": "We announce offices on the blog first."}
        )
        assert r.status_code == 200 and r.json()["status"] == "rejected"

        mine = (await pia.get("/v1/content/suggestions")).json()["items"]
        assert [(s["id"], s["status"], s["rejection_reason"]) for s in mine] == [
            (idea["id"], "rejected", "We announce offices on the blog first.")
        ]
        assert (await pia.get(f"/v1/content/{idea['id']}")).json()["rejection_reason"].startswith("We announce")
        assert (await max_.get("/v1/content/suggestions")).json()["items"] == []
        assert (await max_.get(f"/v1/content/{idea['id']}")).status_code == 404
        assert (await admin.post(f"/v1/content/{idea['id']}/approve")).status_code == 409

        # a second approver: one admin is not enough, the same one twice neither
        r = await admin.put("/v1/tenant/settings", json={"second_approver_required": True})
        assert r.status_code == 200 and r.json()["second_approver_required"] is True
        r = await pia.post(
            "/v1/content/suggestions",
            json={"title": "Customer story", "url": "https://example.com/c", "captions": {"linkedin": "Proud!"}},
        )
        story = r.json()
        r = await admin.post(f"/v1/content/{story['id']}/approve")
        assert r.status_code == 200 and r.json()["status"] == "pending_review" and len(r.json()["approvals"]) == 1
        assert (await admin.post(f"/v1/content/{story['id']}/approve")).status_code == 409
        r = await admin2.post(f"/v1/content/{story['id']}/approve")
        assert r.status_code == 200 and r.json()["status"] == "published", r.text
        assert story["id"] in {c["id"] for c in (await max_.get("/v1/content")).json()["items"]}

        # bad input
        r = await pia.post(
            "/v1/content/suggestions", json={"title": "big", "url": "https://e.com", "body": "x" * 1_000_000}
        )
        assert r.status_code == 422 and field(r) == "body"
        r = await pia.post("/v1/content/suggestions", json={"title": "t", "url": "javascript:alert(1)"})
        assert r.status_code == 422 and field(r) == "url"
        r = await pia.post(
            "/v1/content/suggestions", json={"title": "t", "url": "https://e.com", "status": "published"}
        )
        assert r.status_code == 422 and field(r) == "status"
        assert len((await pia.get("/v1/content/suggestions")).json()["items"]) == 2  # nothing half-saved


async def test_a_coaching_thread_is_invisible_to_a_second_employee(stack: E2EStack, new_tenant: str) -> None:
    ida = stack.client("content", stack.token(new_tenant, "ida", "employee", team="t"))
    jon = stack.client("content", stack.token(new_tenant, "jon", "employee", team="t"))
    coach = stack.client("content", stack.token(new_tenant, "cleo", ["employee", "coach"]))
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    outsider = stack.client("content", stack.token(new_tenant + "-other", "cleo", "coach"))
    async with ida, jon, coach, admin, outsider:
        r = await ida.post(
            "/v1/coaching/requests",
            json={"network": "linkedin", "draft": "Thrilled to share our Q3 numbers", "question": "Too boastful?"},
        )
        assert r.status_code == 201, r.text
        thread = r.json()
        tid = thread["id"]
        for client in (jon, outsider):
            assert (await client.get(f"/v1/coaching/requests/{tid}")).status_code == 404
            assert (await client.post(f"/v1/coaching/requests/{tid}/replies", json={"text": "hi"})).status_code == 404
            assert (await client.post(f"/v1/coaching/requests/{tid}/close")).status_code == 404
            assert tid not in {t["id"] for t in (await client.get("/v1/coaching/requests")).json()["items"]}

        assert tid in {t["id"] for t in (await coach.get("/v1/coaching/requests")).json()["items"]}
        r = await coach.post(f"/v1/coaching/requests/{tid}/replies", json={"text": "Lead with the customer."})
        assert r.status_code == 201 and r.json()["replies"][0]["author_role"] == "coach"
        r = await ida.get(f"/v1/coaching/requests/{tid}")
        assert [x["text"] for x in r.json()["replies"]] == ["Lead with the customer."]
        assert (await admin.get(f"/v1/coaching/requests/{tid}")).status_code == 200
        assert (await admin.post(f"/v1/coaching/requests/{tid}/replies", json={"text": "x"})).status_code == 403
        assert (await coach.post(f"/v1/coaching/requests/{tid}/close")).status_code == 403
        r = await ida.post(f"/v1/coaching/requests/{tid}/close")
        assert r.status_code == 200 and r.json()["status"] == "closed"
        assert (await coach.post(f"/v1/coaching/requests/{tid}/replies", json={"text": "late"})).status_code == 409
        r = await ida.post("/v1/coaching/requests", json={"network": "myspace", "draft": "d", "question": "q"})
        assert r.status_code == 422 and field(r) == "network"


async def test_policy_versions_checks_and_caption_issues(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    emp = stack.client("content", stack.token(new_tenant, "kim", "employee", team="t"))
    async with admin, emp:
        assert (await emp.get("/v1/policy")).json()["version"] == 0
        policy = {
            "guidelines": "# Be kind\nNo numbers before the earnings call.",
            "blocked_terms": ["Project Falcon", "confidential"],
            "required_disclosures": {"x": "#employee"},
            "allowed_domains": ["example.com"],
            "max_lengths": {"linkedin": 1000},
        }
        r = await admin.put("/v1/policy", json=policy)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert (await admin.put("/v1/policy", json=policy)).json()["version"] == 1  # nothing changed
        r = await admin.put("/v1/policy", json={**policy, "blocked_terms": ["Project Falcon", "secret"]})
        assert r.json()["version"] == 2
        versions = (await admin.get("/v1/policy/versions")).json()["items"]
        assert [v["version"] for v in versions] == [2, 1]
        assert versions[0]["updated_by"] == "boss"
        assert versions[0]["changes"] == [{"field": "blocked_terms", "added": ["secret"], "removed": ["confidential"]}]
        seen = (await emp.get("/v1/policy")).json()
        assert seen["version"] == 2 and seen["blocked_terms"] is None and seen["guidelines"].startswith("# Be kind")
        assert (await emp.put("/v1/policy", json=policy)).status_code == 403
        assert (await emp.get("/v1/policy/versions")).status_code == 403

        text = "Big news on pr0ject\u200b-falc0n! https://evil.io/x"
        r = await emp.post("/v1/policy/check", json={"network": "x", "text": text})
        assert r.status_code == 200
        out = r.json()
        assert out["ok"] is False and out["policy_version"] == 2
        by_rule = {v["rule"]: v["span"] for v in out["violations"]}
        assert set(by_rule) == {"blocked_term", "missing_disclosure", "domain_not_allowed"}
        start, end = by_rule["blocked_term"]
        assert text[start:end] == "pr0ject\u200b-falc0n"
        assert text[slice(*by_rule["domain_not_allowed"])] == "https://evil.io/x"
        ok = await emp.post(
            "/v1/policy/check", json={"network": "x", "text": "Great read #employee https://blog.example.com"}
        )
        assert ok.json() == ok.json() | {"ok": True, "violations": []}

        # captions: over the network limit refused; policy breaches saved and shown to the admin
        r = await admin.post("/v1/content", json={"title": "t", "url": "https://e.com", "captions": {"x": "y" * 270}})
        assert r.status_code == 422 and field(r) == "captions.x"
        r = await admin.post(
            "/v1/content",
            json={
                "title": "Falcon",
                "url": "https://example.com",
                "captions": {"x": "All about Project Falcon", "linkedin": "Fine"},
            },
        )
        assert r.status_code == 201
        item = r.json()
        assert [v["rule"] for v in item["caption_issues"]["x"]] == ["blocked_term", "missing_disclosure"]
        assert "linkedin" not in item["caption_issues"]
        listed = (await admin.get("/v1/content")).json()["items"]
        assert listed[0]["caption_issues"]["x"][0]["span"] == [10, 24]
        assert (await emp.get(f"/v1/content/{item['id']}")).json()["caption_issues"] is None

        # bad policies name the field and change nothing
        for body, where in (
            ({"max_lengths": {"x": 1000}}, "max_lengths.x"),
            ({"max_lengths": {"myspace": 10}}, "max_lengths.myspace"),
            ({"blocked_terms": ["ok", "..."]}, "blocked_terms.1"),
            ({"allowed_domains": ["not a domain"]}, "allowed_domains.0"),
            ({"version": 99}, "version"),
        ):
            r = await admin.put("/v1/policy", json=body)
            assert r.status_code == 422 and field(r).startswith(where), (body, r.text)
        assert (await admin.get("/v1/policy")).json()["version"] == 2


async def test_tenant_settings_edits_and_archive(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    emp = stack.client("content", stack.token(new_tenant, "lea", "employee", team="t"))
    async with admin, emp:
        defaults = (await admin.get("/v1/tenant/settings")).json()
        assert defaults["time_zone"] == "UTC" and defaults["updated_at"] is None
        r = await admin.put(
            "/v1/tenant/settings",
            json={
                "time_zone": "Europe/Berlin",
                "base_currency": "eur",
                "cpc": {"linkedin": {"amount": "1.20", "currency": "EUR"}},
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["base_currency"] == "EUR" and r.json()["cpc"]["linkedin"]["amount"] == "1.20"
        for body, where in (
            ({"time_zone": "Mars/Olympus"}, "time_zone"),
            ({"partner_webhook_url": "javascript:alert(1)"}, "partner_webhook_url"),
            ({"tenant_id": "other"}, "tenant_id"),
            ({"cpc": {"myspace": {"amount": "1", "currency": "EUR"}}}, "cpc.myspace"),
            # issue 12: 40 bytes that made a 2 MB event the relay retried forever
            ({"exchange_rates": {"USD": "1e2000000"}}, "exchange_rates.USD"),
            ({"exchange_rates": {"USD": "0.0000000000001"}}, "exchange_rates.USD"),
            ({"brand_audience": {"linkedin": 10**13}}, "brand_audience.linkedin"),
            ({"partner_webhook_url": "https://good.example\\@evil.example/hook"}, "partner_webhook_url"),
        ):
            r = await admin.put("/v1/tenant/settings", json=body)
            assert r.status_code == 422 and field(r).startswith(where), (body, r.text)
        assert (await admin.get("/v1/tenant/settings")).json()["time_zone"] == "Europe/Berlin"
        assert (await emp.get("/v1/tenant/settings")).status_code == 403
        async with stack.client("content", stack.token(new_tenant, "acme", "partner")) as partner:
            assert (await partner.get("/v1/content")).status_code == 403  # partners get their own feed

        item = (await admin.post("/v1/content", json={"title": "Old title", "url": "https://example.com/a"})).json()
        r = await admin.patch(f"/v1/content/{item['id']}", json={"title": "New title", "tags": ["news"]})
        assert r.status_code == 200 and r.json()["title"] == "New title" and r.json()["slug"] == "new-title"
        r = await admin.patch(f"/v1/content/{item['id']}", json={"expires_at": "2000-01-01T00:00:00Z"})
        assert r.status_code == 422 and field(r) == "expires_at"
        r = await admin.patch(f"/v1/content/{item['id']}", json={"url": "data:text/html,hi"})
        assert r.status_code == 422 and field(r) == "url"
        r = await admin.patch(f"/v1/content/{item['id']}", json={"title": "Half", "captions": {"x": "z" * 300}})
        assert r.status_code == 422 and field(r) == "captions.x"
        assert (await admin.get(f"/v1/content/{item['id']}")).json()["title"] == "New title"  # nothing half-saved
        assert (await emp.patch(f"/v1/content/{item['id']}", json={"title": "x"})).status_code == 403
        r = await admin.post(f"/v1/content/{item['id']}/archive")
        assert r.status_code == 200 and r.json()["status"] == "archived"
        assert (await emp.get(f"/v1/content/{item['id']}")).status_code == 404
        assert (await admin.patch(f"/v1/content/{item['id']}", json={"title": "again"})).status_code == 409
        async with stack.client("content", stack.token(new_tenant + "-x", "boss", "admin")) as other:
            assert (await other.patch(f"/v1/content/{item['id']}", json={"title": "x"})).status_code == 404
            assert (await other.post(f"/v1/content/{item['id']}/archive")).status_code == 404


async def test_erasure_makes_content_forget_the_person(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.client("content", stack.token(new_tenant, "boss", "admin"))
    ola = stack.client("content", stack.token(new_tenant, "ola", "employee", team="t", name="Ola O."))
    other_admin = stack.client("content", stack.token(new_tenant + "-x", "boss", "admin"))
    async with admin, ola, other_admin:
        await ola.put("/v1/me/topics", json={"topics": ["ai"]})
        await ola.put(
            "/v1/me/membership", json={"enrolled": True, "programme_roles": ["creator"], "leaderboard": "ranked"}
        )
        idea = (
            await ola.post("/v1/content/suggestions", json={"title": "Idea", "url": "https://example.com/i"})
        ).json()
        thread = (await ola.post("/v1/coaching/requests", json={"network": "x", "draft": "d", "question": "q"})).json()
        assert (await ola.delete("/v1/members/ola")).status_code == 403
        assert (await other_admin.delete("/v1/members/ola")).status_code == 204  # another tenant: no effect
        assert (await ola.get("/v1/me/topics")).json() == {"topics": ["ai"]}

        assert (await admin.delete("/v1/members/ola")).status_code == 204
        assert (await ola.get("/v1/me/topics")).json() == {"topics": []}
        membership = (await ola.get("/v1/me/membership")).json()
        assert membership["programme_roles"] == [] and membership["leaderboard"] == "ranked"
        assert (await admin.get(f"/v1/coaching/requests/{thread['id']}")).status_code == 404
        assert (await ola.get("/v1/content/suggestions")).json()["items"] == []
        kept = (await admin.get(f"/v1/content/{idea['id']}")).json()
        assert kept["proposer_id"] is None and kept["created_by"] == "erased"
        assert (await admin.delete("/v1/members/ola")).status_code == 204  # twice is harmless
