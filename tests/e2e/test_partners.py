"""Partners as principals through the four services (issue 13, item 4): two partners report the same
``external_id`` for one click and both conversions count (before, the second partner received the
first one's conversion id: it could claim it); a revoked partner's secret and token stop at once."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from advocacy_sharing.features.conversions import signature
from tests.e2e.conftest import E2EStack
from tests.e2e.test_sharing_verdicts import CHROME, publish, share
from tests.support.helpers import ACCEPT_LANGUAGE, eventually, visitor_ip


def _signed(secret: str, body: dict[str, Any], tenant: str) -> tuple[bytes, dict[str, str]]:
    raw, stamp = json.dumps(body).encode(), str(int(time.time()))
    return raw, {
        "X-Advocacy-Tenant": tenant,
        "X-Advocacy-Timestamp": stamp,
        "X-Advocacy-Signature": signature(secret, stamp, raw),
        "Content-Type": "application/json",
    }


async def test_two_partners_one_external_id_two_conversions(stack: E2EStack, new_tenant: str) -> None:
    tenant = new_tenant
    code = await share(stack, tenant, "ann", await publish(stack, tenant))
    async with httpx.AsyncClient(base_url=stack.url("sharing"), timeout=10) as c:
        r = await c.get(
            f"/r/{code}",
            headers={"X-Forwarded-For": visitor_ip(4242), "User-Agent": CHROME, "Accept-Language": ACCEPT_LANGUAGE},
        )
        assert r.status_code == 302
        click_id = r.headers["location"].split("adv_click=")[1].split("&")[0]
    admin = stack.token(tenant, "admin-1", "admin")
    async with stack.client("sharing", admin) as c:
        secrets = {}
        for partner in ("shop", "crm"):
            r = await c.post("/v1/partners", json={"id": partner, "name": partner})
            assert r.status_code == 201, r.text
            secrets[partner] = r.json()["secret"]
    body = {"click_id": click_id, "kind": "sale", "external_id": "order-1"}
    ids = {}
    async with stack.client("sharing") as c:
        for partner, secret in secrets.items():
            raw, h = _signed(secret, body, tenant)
            r = await c.post("/v1/conversions", content=raw, headers=h)
            assert r.status_code == 202, r.text
            ids[partner] = r.json()["conversion_id"]
    assert ids["shop"] != ids["crm"]
    async with stack.client("sharing", stack.token(tenant, "crm", "partner")) as c:
        assert (await c.post("/v1/conversions", json=body)).json()["conversion_id"] == ids["crm"]
    async with stack.client("metrics", admin) as m:

        async def both_counted() -> bool:
            r = await m.get("/v1/metrics/employees/ann")
            return r.status_code == 200 and r.json()["conversions"] == 2

        await eventually(both_counted, timeout=30, interval=0.3, what="metrics counts both partners' conversions")
    async with stack.client("sharing", admin) as c:
        assert (await c.post("/v1/partners/shop/revoke")).status_code == 200
    async with stack.client("sharing") as c:
        raw, h = _signed(secrets["shop"], {**body, "external_id": "order-2"}, tenant)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).status_code == 401
    async with stack.client("sharing", stack.token(tenant, "shop", "partner")) as c:
        assert (await c.post("/v1/conversions", json={**body, "external_id": "order-3"})).status_code == 403
