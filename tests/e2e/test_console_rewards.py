"""The console's rewards page against the four services (no browser: the console in-process, the
services as processes): a person redeems with the points a share earned, a double submit is one
redemption (the form's Idempotency-Key), a second one is refused for lack of points, and another
tenant's reward id is "no such reward"."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from advocacy_console.app import create_app
from advocacy_console.settings import ConsoleSettings
from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually

SERVICES = ("content", "sharing", "metrics", "gamification")


def form_fields(html: str, action: str) -> dict[str, str]:
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', html, re.S)
    assert form, html[:2000]
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(1)))


async def test_redeem_through_the_console(stack: E2EStack, new_tenant: str, unique_id) -> None:
    admin = stack.token(new_tenant, "admin-1", "admin")
    alice = stack.token(new_tenant, "alice", "employee", team="sales", name="Alice A.")
    async with stack.client("gamification", admin) as g:
        r = await g.post("/v1/rewards", json={"name": "Team lunch", "cost_points": 10, "stock": 5})
        assert r.status_code == 201, r.text
        reward = r.json()["id"]
        other = stack.token(unique_id("t"), "admin-2", "admin")
        r = await g.post(
            "/v1/rewards",
            json={"name": "Elsewhere", "cost_points": 1, "stock": 5},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert r.status_code == 201, r.text
        foreign = r.json()["id"]
    async with stack.client("content", admin) as c:
        r = await c.post("/v1/content", json={"title": "Launch", "url": "https://example.com/l"})
        item = r.json()["id"]
    async with stack.client("sharing", alice) as s:

        async def shared() -> bool:
            return (await s.post("/v1/shares", json={"content_id": item, "network": "linkedin"})).status_code == 201

        await eventually(shared, timeout=15, what="the share")
    async with stack.client("gamification", alice) as g:

        async def earned() -> bool:
            return (await g.get("/v1/points/me")).json()["balance"] == 10

        await eventually(earned, timeout=15, what="10 points for the share")

    settings = ConsoleSettings(
        dev_mode=True,
        dev_keys_dir=Path(stack.keys.private_path).parent,
        cookie_secure=False,
        **{f"{svc}_url": stack.url(svc) for svc in SERVICES},  # type: ignore[arg-type]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://c") as b:
        login = await b.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf
        data = {"csrf": csrf.group(1), "tenant": new_tenant, "sub": "alice", "role": "employee", "team": "sales"}
        assert (await b.post("/login/dev", data=data)).status_code == 303

        page = await b.get("/rewards")
        assert page.status_code == 200 and "Team lunch" in page.text and 'id="balance">10<' in page.text
        assert "Elsewhere" not in page.text
        fields = form_fields(page.text, f"/rewards/{reward}/redeem")
        for _ in range(2):  # a double submit of the same form
            r = await b.post(f"/rewards/{reward}/redeem", data=fields)
            assert r.status_code == 303 and r.headers["location"] == "/rewards"
        page = await b.get("/rewards")
        assert "Redeemed" in page.text and "Not redeemed" not in page.text and 'id="balance">0<' in page.text
        assert page.text.count("<td>Team lunch</td>") == 1  # one redemption

        again = form_fields(page.text, f"/rewards/{reward}/redeem")
        r = await b.post(f"/rewards/{reward}/redeem", data=again)
        assert r.status_code == 303
        page = await b.get("/rewards")
        assert "Not redeemed" in page.text and page.text.count("<td>Team lunch</td>") == 1

        for rid in (foreign, "../../v1/rules"):  # another tenant's reward; not an id at all
            r = await b.post(f"/rewards/{rid}/redeem", data={**again, "idempotency_key": unique_id("k")})
            assert r.status_code in (303, 404)
        page = await b.get("/rewards")
        assert "no such reward" in page.text and page.text.count("<td>Team lunch</td>") == 1
