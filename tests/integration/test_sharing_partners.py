"""Partners as principals (issue 13, item 4) and refused links (item 10), on sharing's own database
and broker: each partner has its own secrets and ``external_id`` space, rotation overlaps, revocation
stops at once, a partner token speaks only for its partner, malformed headers are 401s, every change
is in the audit log, and links whose stored URL the rules now refuse are listed for the admin."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from advocacy_sharing.features import links
from tests.integration.test_sharing_api import clicked, ids, signed
from tests.support.sharing import Sharing


async def _partner(c: Any, partner_id: str) -> str:
    r = await c.post("/v1/partners", json={"id": partner_id, "name": partner_id.upper()})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == partner_id and r.json()["revoked_at"] is None
    return str(r.json()["secret"])


async def _setup(sharing: Sharing) -> tuple[str, str]:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    share = await sharing.share(tenant, "alice", content)
    return tenant, await clicked(sharing, share["code"], "198.19.9.1")


async def test_two_partners_external_ids_never_collide(sharing: Sharing) -> None:
    tenant, click_id = await _setup(sharing)
    async with sharing.client(sharing.mint(tenant, "root", "admin")) as c:
        shop, crm = await _partner(c, "shop"), await _partner(c, "crm")
        assert (await c.post("/v1/partners", json={"id": "shop", "name": "again"})).status_code == 409
        assert (await c.post("/v1/partners", json={"id": "Bad Id!", "name": "x"})).status_code == 422
        listed = (await c.get("/v1/partners")).json()["items"]
        assert [p["id"] for p in listed] == ["crm", "shop"] and "secret" not in listed[0]
    body = {"click_id": click_id, "kind": "sale", "external_id": "order-1"}
    async with sharing.client() as c:
        raw, h = signed(shop, body, tenant)
        r = await c.post("/v1/conversions", content=raw, headers=h)
        assert r.status_code == 202, r.text
        by_shop = r.json()["conversion_id"]
        raw, h = signed(crm, body, tenant)  # the same external_id, another partner: another conversion
        by_crm = (await c.post("/v1/conversions", content=raw, headers=h)).json()["conversion_id"]
        assert by_crm != by_shop
        raw, h = signed(crm, body, tenant)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).json()["conversion_id"] == by_crm
        # X-Advocacy-Partner must be the partner whose secret signed
        raw, h = signed(shop, {**body, "external_id": "order-2"}, tenant)
        assert (
            await c.post("/v1/conversions", content=raw, headers={**h, "X-Advocacy-Partner": "crm"})
        ).status_code == 401
        assert (
            await c.post("/v1/conversions", content=raw, headers={**h, "X-Advocacy-Partner": "shop"})
        ).status_code == 202
    # a partner token is its partner: it gets its own conversion back, never claims the other's
    async with sharing.client(sharing.mint(tenant, "shop", "partner")) as c:
        assert (await c.post("/v1/conversions", json=body)).json()["conversion_id"] == by_shop
        r = await c.post("/v1/conversions", json=body, headers={"X-Advocacy-Partner": "crm"})
        assert r.status_code == 403
    async with sharing.client(sharing.mint(tenant, "crm", "partner")) as c:
        assert (await c.post("/v1/conversions", json=body)).json()["conversion_id"] == by_crm
    async with sharing.client(sharing.mint(tenant, "stranger", "partner")) as c:  # never registered
        assert (await c.post("/v1/conversions", json={**body, "external_id": "x"})).status_code == 403
    rows = await sharing.rows(
        "select partner_id, external_id from conversions where tenant_id = :t order by partner_id, external_id",
        t=tenant,
    )
    assert [tuple(r) for r in rows] == [("crm", "order-1"), ("shop", "order-1"), ("shop", "order-2")]


async def test_rotation_overlaps_and_revocation_stops_at_once(sharing: Sharing) -> None:
    tenant, click_id = await _setup(sharing)
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        first, other = await _partner(c, "shop"), await _partner(c, "crm")
        r = await c.post("/v1/partners/shop/secrets/rotate", params={"overlap_hours": 24})
        assert r.status_code == 201, r.text
        second = r.json()["secret"]
        until = r.json()["previous_valid_until"]
        assert until is not None and 23.9 * 3600 < _from_now(until) <= 24 * 3600
        assert (await c.post("/v1/partners/shop/secrets/rotate", params={"overlap_hours": 500})).status_code == 422
        assert (await c.post("/v1/partners/nobody/secrets/rotate")).status_code == 404

    async def post(secret: str, n: int) -> int:
        raw, h = signed(secret, {"click_id": click_id, "kind": "lead", "external_id": f"r-{n}"}, tenant)
        async with sharing.client() as c:
            return (await c.post("/v1/conversions", content=raw, headers=h)).status_code

    assert [await post(first, 1), await post(second, 2)] == [202, 202]  # the overlap
    async with sharing.client(admin) as c:
        third = (await c.post("/v1/partners/shop/secrets/rotate", params={"overlap_hours": 0})).json()["secret"]
    assert [await post(first, 3), await post(second, 4), await post(third, 5)] == [401, 401, 202]
    async with sharing.client(admin) as c:
        r = await c.post("/v1/partners/shop/revoke")
        assert r.status_code == 200 and r.json()["revoked_at"] is not None
        assert (await c.post("/v1/partners/shop/secrets/rotate")).status_code == 409
        assert (await c.post("/v1/partners", json={"id": "shop", "name": "back"})).status_code == 409
    assert [await post(third, 6), await post(other, 7)] == [401, 202]  # the other partner is untouched
    async with sharing.client(sharing.mint(tenant, "shop", "partner")) as c:
        r = await c.post("/v1/conversions", json={"click_id": click_id, "kind": "lead", "external_id": "r-8"})
        assert r.status_code == 403 and "revoked" in r.text
    async with sharing.client(sharing.mint(tenant, "alice", "employee")) as c:
        for path in ("/v1/partners/crm/revoke", "/v1/partners/crm/secrets/rotate"):
            assert (await c.post(path)).status_code == 403
        assert (await c.get("/v1/partners")).status_code == 403
    # each change is in the audit log, newest first
    async with sharing.client(admin) as c:
        r = await c.get("/v1/audit/sharing", params={"limit": 200})
        assert r.status_code == 200, r.text
        entries = [(e["action"], e["target"], e["actor"]) for e in r.json()["items"]]
    assert entries == [
        ("partner.revoked", "shop", "root"),
        ("conversion_secret.revoked", "shop", "root"),
        ("conversion_secret.created", "shop", "root"),
        ("conversion_secret.created", "shop", "root"),
        ("conversion_secret.created", "crm", "root"),
        ("partner.created", "crm", "root"),
        ("conversion_secret.created", "shop", "root"),
        ("partner.created", "shop", "root"),
    ]


def _from_now(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() - time.time()


async def test_the_old_rotation_route_is_the_default_partner(sharing: Sharing) -> None:
    tenant, click_id = await _setup(sharing)
    async with sharing.client(sharing.mint(tenant, "root", "admin")) as c:
        secret = (await c.post("/v1/conversion-secrets/rotate")).json()["secret"]
        assert [p["id"] for p in (await c.get("/v1/partners")).json()["items"]] == ["default"]
        shop = await _partner(c, "shop")
        r = await c.post("/v1/conversions", json={"click_id": click_id, "kind": "lead", "external_id": "d-1"})
        by_admin = r.json()["conversion_id"]
    async with sharing.client() as c:
        raw, h = signed(secret, {"click_id": click_id, "kind": "lead", "external_id": "d-1"}, tenant)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).json()["conversion_id"] == by_admin
        raw, h = signed(shop, {"click_id": click_id, "kind": "lead", "external_id": "d-1"}, tenant)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).json()["conversion_id"] != by_admin


async def test_malformed_signature_headers_are_401_never_500(sharing: Sharing) -> None:
    tenant, click_id = await _setup(sharing)
    async with sharing.client(sharing.mint(tenant, "root", "admin")) as c:
        secret = await _partner(c, "shop")
    raw, h = signed(secret, {"click_id": click_id, "kind": "lead", "external_id": "m-1"}, tenant)
    bad: list[dict[str, str]] = [
        {"X-Advocacy-Timestamp": "9" * 400},  # was a 500: an int too large for a float
        {"X-Advocacy-Timestamp": "-1"},
        {"X-Advocacy-Timestamp": "1e9"},
        {"X-Advocacy-Signature": "sha256=" + "é" * 64},
        {"X-Advocacy-Signature": "sha256=" + "a" * 5000},
        {"X-Advocacy-Signature": "\x7f"},
        {"X-Advocacy-Partner": "é"},
        {"X-Advocacy-Partner": "x" * 300},
        {"X-Advocacy-Tenant": "ü" * 100},
    ]
    async with sharing.client() as c:
        for change in bad:
            headers = {k.encode(): v.encode("latin-1") for k, v in {**h, **change}.items()}
            r = await c.post("/v1/conversions", content=raw, headers=headers)
            assert r.status_code == 401, (change, r.status_code, r.text)


@pytest.mark.parametrize("batch", [500, 1], ids=["one-batch", "scan-bound"])
async def test_links_of_refused_urls_are_listed_for_the_admin(
    sharing: Sharing, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # batch 1 with a scan bound of 2: pages cut short by the bound still reach every refused link
    monkeypatch.setattr(links, "BATCH", batch)
    monkeypatch.setattr(links, "MAX_SCANNED", 2 if batch == 1 else links.MAX_SCANNED)
    tenant = ids()[0]
    good, bad, worse = (f"{n}-{tenant}" for n in ("good", "bad", "worse"))
    for content in (good, bad, worse):
        await sharing.publish_content(tenant, content)
    codes = {
        content: [(await sharing.share(tenant, who, content))["code"] for who in ("alice", "bob", "carol")]
        for content in (good, bad, worse)
    }
    async with sharing.engine.begin() as conn:  # stored before URLs were canonical
        for content, url in ((bad, "https://good.example\\@evil.example/x"), (worse, "https://u:p@e.com/")):
            await conn.execute(
                sa.text("update content_copies set url = :u where tenant_id = :t and content_id = :c"),
                {"u": url, "t": tenant, "c": content},
            )
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(20):
            r = await c.get("/v1/links/refused", params={"limit": 4, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200, r.text
            items += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert (await c.get("/v1/links/refused", params={"cursor": "WyJ4Il0"})).status_code == 422
    assert sorted((i["content_id"], i["code"]) for i in items) == sorted(
        [(bad, code) for code in codes[bad]] + [(worse, code) for code in codes[worse]]
    )
    assert len(items) == 6
    reasons = {i["content_id"]: i["reason"] for i in items}
    assert "backslash" in reasons[bad] and "credentials" in reasons[worse]
    async with sharing.client(sharing.mint(tenant, "alice", "employee")) as c:
        assert (await c.get("/v1/links/refused")).status_code == 403


async def test_an_invalidation_is_in_the_audit_log(sharing: Sharing) -> None:
    tenant, _ = await _setup(sharing)
    code = (await sharing.rows("select code from shares where tenant_id = :t", t=tenant))[0][0]
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        r = await c.post("/v1/clicks/invalidate", json={"link_code": code, "reason": "click farm"})
        assert r.status_code == 200, r.text
        entries = (await c.get("/v1/audit/sharing", params={"action": "clicks.invalidated"})).json()["items"]
    assert [(e["actor"], e["after"]) for e in entries] == [
        ("root", {"link_code": code, "reason": "click farm", "invalidated": r.json()["invalidated"]})
    ]
