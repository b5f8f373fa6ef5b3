"""Sharing's REST API with its consumers, on its own database and broker: policy, authenticity,
accounts, listing, conversions (signed and by partner token), secret rotation, invalidation, erasure."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from advocacy_common.events import new_event
from advocacy_common.events.content import MemberErased, PolicyUpdated, TenantSettingsUpdated
from advocacy_common.tenant import TenantSettings
from advocacy_sharing.features.conversions import signature
from tests.support.helpers import ACCEPT_LANGUAGE
from tests.support.sharing import Sharing

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def ids() -> tuple[str, str]:
    return f"t-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"


async def until(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


async def test_policy_violations_are_422_with_spans(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    await sharing.publish(
        new_event(
            "/advocacy/content",
            tenant,
            PolicyUpdated(
                version=1,
                blocked_terms=["confidential"],
                required_disclosures={"linkedin": "#employee"},
                updated_by="admin",
                updated_at=datetime.now(UTC),
            ),
        )
    )
    await sharing.share(tenant, "warmup", content, network="x")  # content known
    await until(lambda: sharing.scalar("select version from policies where tenant_id = :t", t=tenant))
    token = sharing.mint(tenant, "alice", "employee")
    async with sharing.client(token) as c:
        r = await c.post(
            "/v1/shares", json={"content_id": content, "network": "linkedin", "message": "C0nfidential news!"}
        )
        assert r.status_code == 422, r.text
        details = r.json()["error"]["details"]
        assert {d["rule"] for d in details} == {"blocked_term", "missing_disclosure"}
        blocked = next(d for d in details if d["rule"] == "blocked_term")
        assert blocked["span"] == [0, 12]
        r = await c.post("/v1/shares", json={"content_id": content, "network": "x", "message": "a" * 300})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["rule"] == "too_long"
        r = await c.post("/v1/shares", json={"content_id": content, "network": "myspace"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "network"
        r = await c.post(
            "/v1/shares", json={"content_id": content, "network": "linkedin", "message": "Great news #employee"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["intent_url"].startswith("https://www.linkedin.com/")
    other = sharing.mint("t-other", "mallory", "employee")
    async with sharing.client(other) as c:  # another tenant's content does not exist for them
        r = await c.post("/v1/shares", json={"content_id": content, "network": "linkedin"})
        assert r.status_code == 404


async def test_near_identical_messages_get_a_warning(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    msg = "Proud of our team: the new launch makes onboarding twice as fast for every customer!"
    for i in range(3):
        r = await sharing.share(tenant, f"colleague-{i}", content, message=msg if i else msg.upper())
        assert r["warnings"] == []
    r = await sharing.share(tenant, "dave", content, message=msg + "!!")
    assert len(r["warnings"]) == 1 and "personalise" in r["warnings"][0]
    r = await sharing.share(tenant, "erin", content, message="I tried the new onboarding myself; it is quicker.")
    assert r["warnings"] == []


async def test_accounts_and_audience_at_share_time_and_listing(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    alice = sharing.mint(tenant, "alice", "employee")
    async with sharing.client(alice) as c:
        r = await c.put("/v1/accounts/linkedin", json={"handle": "alice-a", "audience_size": 1200})
        assert r.status_code == 200 and r.json()["audience_size"] == 1200
        assert (await c.put("/v1/accounts/linkedin", json={"handle": "a", "audience_size": -1})).status_code == 422
        assert (await c.put("/v1/accounts/myspace", json={"handle": "a", "audience_size": 1})).status_code == 422
        r = await c.put("/v1/accounts/linkedin", json={"handle": "a", "audience_size": 1, "tenant_id": "x"})
        assert r.status_code == 422
        assert [a["network"] for a in (await c.get("/v1/accounts")).json()["items"]] == ["linkedin"]
    share = await sharing.share(tenant, "alice", content)
    assert share["audience_size"] == 1200
    body = await sharing.scalar(
        "select convert_from(value, 'UTF8') from outbox where event_type = 'io.advocacy.share.created.v1' "
        "and tenant_id = :t",
        t=tenant,
    )
    assert json.loads(body)["audience_size"] == 1200
    await sharing.share(tenant, "alice", content, network="x")
    await sharing.share(tenant, "bob", content)
    async with sharing.client(alice) as c:
        mine = (await c.get("/v1/shares")).json()
        assert {s["employee_id"] for s in mine["items"]} == {"alice"} and len(mine["items"]) == 2
        assert (await c.get("/v1/shares", params={"employee_id": "bob"})).json()["items"][0]["employee_id"] == "alice"
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        page1 = (await c.get("/v1/shares", params={"limit": 2})).json()
        assert len(page1["items"]) == 2 and page1["next_cursor"]
        page2 = (await c.get("/v1/shares", params={"limit": 2, "cursor": page1["next_cursor"]})).json()
        assert len(page2["items"]) == 1 and page2["next_cursor"] is None
        assert {s["id"] for s in page1["items"] + page2["items"]} == {
            s["id"] for s in (await c.get("/v1/shares")).json()["items"]
        }
        only_bob = (await c.get("/v1/shares", params={"employee_id": "bob"})).json()["items"]
        assert [s["employee_id"] for s in only_bob] == ["bob"]
        assert len((await c.get("/v1/shares", params={"network": "x"})).json()["items"]) == 1
        assert (await c.get("/v1/shares", params={"cursor": "garbage!"})).status_code == 422


async def clicked(sharing: Sharing, code: str, ip: str) -> str:
    async with sharing.client(**{"X-Forwarded-For": ip, "User-Agent": CHROME, "Accept-Language": ACCEPT_LANGUAGE}) as c:
        r = await c.get(f"/r/{code}")
    assert r.status_code == 302
    return r.headers["location"].split("adv_click=")[1]


def signed(secret: str, body: dict[str, Any], tenant: str, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    return raw, {
        "X-Advocacy-Tenant": tenant,
        "X-Advocacy-Timestamp": stamp,
        "X-Advocacy-Signature": signature(secret, stamp, raw),
        "Content-Type": "application/json",
    }


async def test_conversions_signed_idempotent_and_attributed(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    share = await sharing.share(tenant, "alice", content)
    click_id = await clicked(sharing, share["code"], "198.19.0.1")
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        r = await c.post("/v1/conversion-secrets/rotate")
        assert r.status_code == 201
        secret = r.json()["secret"]
    body = {"click_id": click_id, "kind": "sale", "value": {"amount": "12.50", "currency": "EUR"}, "external_id": "o-1"}
    async with sharing.client() as c:
        raw, h = signed(secret, body, tenant)
        r = await c.post("/v1/conversions", content=raw, headers=h)
        assert r.status_code == 202, r.text
        cid = r.json()["conversion_id"]
        raw, h = signed(secret, body, tenant)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).json() == {"conversion_id": cid}
        # a replay older than 5 minutes, a bad signature, another tenant's secret, no headers
        raw, h = signed(secret, {**body, "external_id": "o-2"}, tenant, ts=int(time.time()) - 301)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).status_code == 401
        raw, h = signed("not-the-secret", {**body, "external_id": "o-2"}, tenant)
        assert (await c.post("/v1/conversions", content=raw, headers=h)).status_code == 401
        # issue 13: a non-ASCII signature was a 500 (hmac.compare_digest on str)
        raw, h = signed(secret, {**body, "external_id": "o-2"}, tenant)
        h["X-Advocacy-Signature"] = "é" * 64
        assert (
            await c.post("/v1/conversions", content=raw, headers={k: v.encode("latin-1") for k, v in h.items()})
        ).status_code == 401
        raw, h = signed(secret, {**body, "external_id": "o-2"}, "t-other")
        assert (await c.post("/v1/conversions", content=raw, headers=h)).status_code == 401
        assert (await c.post("/v1/conversions", json=body)).status_code == 401
        # signed but wrong: negative value, unknown currency, forged click id, unknown field
        for bad, status in (
            ({**body, "external_id": "o-3", "value": {"amount": "-1", "currency": "EUR"}}, 422),
            ({**body, "external_id": "o-3", "value": {"amount": "1", "currency": "ZZZ"}}, 422),
            ({**body, "external_id": "o-3", "click_id": click_id[:-2] + "AA"}, 404),
            ({**body, "external_id": "o-3", "click_id": "nonsense"}, 404),
            ({**body, "external_id": "o-3", "points": 5}, 422),
        ):
            raw, h = signed(secret, bad, tenant)
            r = await c.post("/v1/conversions", content=raw, headers=h)
            assert r.status_code == status, (bad, r.text)
    for t in (tenant, "t-other"):  # a partner token speaks for a partner the tenant's admin created
        async with sharing.client(sharing.mint(t, "root", "admin")) as c:
            assert (await c.post("/v1/partners", json={"id": "crm", "name": "CRM"})).status_code in (201, 409)
    partner = sharing.mint(tenant, "crm", "partner")
    employee = sharing.mint(tenant, "alice", "employee")
    async with sharing.client(partner) as c:
        r = await c.post("/v1/conversions", json={**body, "external_id": "o-4", "kind": "lead"})
        assert r.status_code == 202
    async with sharing.client(employee) as c:
        assert (await c.post("/v1/conversions", json={**body, "external_id": "o-5"})).status_code == 403
    other_partner = sharing.mint("t-other", "crm", "partner")
    async with sharing.client(other_partner) as c:  # the click belongs to another tenant
        assert (await c.post("/v1/conversions", json={**body, "external_id": "o-6"})).status_code == 404
    events = await sharing.rows(
        "select convert_from(value, 'UTF8') from outbox where event_type = 'io.advocacy.conversion.recorded.v1' "
        "and tenant_id = :t order by id",
        t=tenant,
    )
    recorded = [json.loads(e[0]) for e in events]
    assert [(e["external_id"], e["employee_id"], e["share_id"]) for e in recorded] == [
        ("o-1", "alice", share["id"]),
        ("o-4", "alice", share["id"]),
    ]
    assert recorded[0]["value"] == {"amount": "12.50", "currency": "EUR"}


async def test_attribution_window_and_secret_rotation(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    await sharing.publish(
        new_event(
            "/advocacy/content",
            tenant,
            TenantSettingsUpdated(settings=TenantSettings(attribution_window_days=1), updated_at=datetime.now(UTC)),
        )
    )
    share = await sharing.share(tenant, "alice", content)
    await until(lambda: sharing.scalar("select 1 from tenant_settings where tenant_id = :t", t=tenant))
    redirector = sharing.runtime.parts.redirector
    real = redirector.clock
    redirector.clock = lambda: real() - 2 * 86400  # a click two days ago
    try:
        old_click = await clicked(sharing, share["code"], "198.19.1.1")
    finally:
        redirector.clock = real
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        first = (await c.post("/v1/conversion-secrets/rotate")).json()["secret"]
        rotated = (await c.post("/v1/conversion-secrets/rotate")).json()
        second = rotated["secret"]
        assert rotated["previous_valid_until"] is not None and first != second
        third = (await c.post("/v1/conversion-secrets/rotate")).json()["secret"]
    async with sharing.client() as c:
        body = {"click_id": old_click, "kind": "signup", "external_id": "w-1"}
        raw, h = signed(third, body, tenant)
        r = await c.post("/v1/conversions", content=raw, headers=h)
        assert r.status_code == 422 and "attribution window" in r.text
        fresh = await clicked(sharing, share["code"], "198.19.1.2")
        for secret, status in ((third, 202), (second, 202), (first, 401)):  # previous: grace; older: refused
            raw, h = signed(secret, {"click_id": fresh, "kind": "signup", "external_id": f"w-{secret[:6]}"}, tenant)
            assert (await c.post("/v1/conversions", content=raw, headers=h)).status_code == status
    employee = sharing.mint(tenant, "alice", "employee")
    async with sharing.client(employee) as c:
        assert (await c.post("/v1/conversion-secrets/rotate")).status_code == 403


async def test_invalidation_takes_back_counted_clicks_once(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    share = await sharing.share(tenant, "alice", content)
    for i in range(5):  # five people on five networks (five on one /24 this fast is a mail scanner's burst)
        await clicked(sharing, share["code"], f"198.19.{10 + i}.2")
    async with sharing.client(
        **{"X-Forwarded-For": "198.19.10.2", "User-Agent": CHROME, "Accept-Language": ACCEPT_LANGUAGE}
    ) as c:
        await c.get(f"/r/{share['code']}")  # a duplicate: not counted, nothing to take back
    await until(lambda: sharing.scalar("select count(*) = 6 from clicks where code = :c", c=share["code"]))
    admin = sharing.mint(tenant, "root", "admin")
    async with sharing.client(admin) as c:
        r = await c.post("/v1/clicks/invalidate", json={"link_code": share["code"], "reason": "click farm"})
        assert r.status_code == 200 and r.json() == {"invalidated": 5}
        r = await c.post("/v1/clicks/invalidate", json={"link_code": share["code"], "reason": "again"})
        assert r.json() == {"invalidated": 0}
        assert (await c.post("/v1/clicks/invalidate", json={"reason": "everything?"})).status_code == 422
    async with sharing.client(sharing.mint(tenant, "alice", "employee")) as c:
        assert (await c.post("/v1/clicks/invalidate", json={"link_code": "x", "reason": "r"})).status_code == 403
    n = await sharing.scalar(
        "select count(*) from outbox where event_type = 'io.advocacy.share.click_invalidated.v1' and tenant_id = :t",
        t=tenant,
    )
    assert n == 5


async def test_erasure_unlinks_but_links_keep_redirecting(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish_content(tenant, content)
    alice = sharing.mint(tenant, "alice", "employee")
    async with sharing.client(alice) as c:
        await c.put("/v1/accounts/linkedin", json={"handle": "alice", "audience_size": 10})
    share = await sharing.share(tenant, "alice", content, message="My own words")
    await clicked(sharing, share["code"], "198.19.3.1")
    await until(lambda: sharing.scalar("select count(*) = 1 from clicks where code = :c", c=share["code"]))
    await sharing.publish(
        new_event("/advocacy/content", tenant, MemberErased(employee_id="alice", erased_at=datetime.now(UTC)))
    )
    await until(lambda: sharing.scalar("select employee_id is null from shares where id = :s", s=share["id"]))
    assert await sharing.scalar("select count(*) from accounts where tenant_id = :t", t=tenant) == 0
    assert await sharing.scalar("select message from shares where id = :s", s=share["id"]) is None
    assert (
        await sharing.scalar("select count(*) from clicks where employee_id = 'alice' and tenant_id = :t", t=tenant)
        == 0
    )
    await clicked(sharing, share["code"], "198.19.3.2")  # still redirects
    await until(lambda: sharing.scalar("select count(*) = 2 from clicks where code = :c", c=share["code"]))
    await asyncio.sleep(0.3)
    n = await sharing.scalar(
        "select count(*) from outbox where event_type = 'io.advocacy.share.clicked.v1' and tenant_id = :t",
        t=tenant,
    )
    # the click after the erasure credits no one; the one before was credited, and its outbox row
    # (naming her) went with the erasure (issue 13)
    assert n == 0


# -- share tickets: the browser shares without the person's token (issue 20) --------------------------
async def test_a_share_ticket_makes_one_share_for_its_item_and_network_once(sharing: Sharing) -> None:
    tenant, content = f"t-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    await sharing.publish_content(tenant, content)
    await sharing.share(tenant, "warmup", content)  # waits until sharing knows the item
    token = sharing.mint(tenant, "alice", "employee", team="sales", name="Alice")
    async with sharing.client(token) as c:
        r = await c.post("/v1/shares/tickets", json={"content_id": content, "network": "linkedin"})
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    async with sharing.client() as browser:  # no Authorization header: the ticket is the credential
        made = await browser.post("/v1/shares/with-ticket", json={"ticket": ticket, "message": "Proud of this"})
        assert made.status_code == 201, made.text
        share = made.json()
        assert (share["employee_id"], share["content_id"], share["network"]) == ("alice", content, "linkedin")
        assert share["intent_url"].startswith("https://www.linkedin.com/") and share["message"] == "Proud of this"
        # the person's name travels with the share, as with a token (the wall named no one without it)
        named = "select employee_name, team from shares where id = :i"
        assert tuple(*await sharing.rows(named, i=share["id"])) == ("Alice", "sales")
        again = await browser.post("/v1/shares/with-ticket", json={"ticket": ticket})
        assert again.status_code == 409, again.text  # single use
        altered = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
        forged = await browser.post("/v1/shares/with-ticket", json={"ticket": altered})
        assert forged.status_code == 401, forged.text
        # a ticket is not a bearer token, and no ticket is none
        assert (await browser.post("/v1/shares", json={"content_id": content, "network": "x"})).status_code == 401
        assert (await browser.post("/v1/shares/with-ticket", json={"ticket": "x" * 3000})).status_code == 422
    async with sharing.client(token) as c:
        mine = (await c.get("/v1/shares")).json()["items"]
    assert [s["id"] for s in mine] == [share["id"]]
