"""Security fixtures: one private stack of the four services for the whole security session, on
fresh databases of the session PostgreSQL and a broker of its own (``sec_stack``), and tenant A's
world in it (``world``): one real resource of every kind, created through the APIs, that tenant B
then attacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from advocacy_dev.devstack.broker import TansuBroker
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, visitor_ip
from tests.support.processes import own_tansu
from tests.support.stackkit import PrivateStack, running_stack


@pytest.fixture(scope="session")
def sec_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with own_tansu(tmp_path_factory.mktemp("sec-tansu")) as tansu:
        yield tansu


@pytest.fixture(scope="session")
def sec_stack(
    pg: Any, sec_broker: TansuBroker, dev_keys: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url,
        bootstrap=sec_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path_factory.mktemp("sec-stack"),
        extra_env={"sharing": {"SHARING_BROKER_WATCH_SECONDS": "1"}},
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def _sec_services_up(request: pytest.FixtureRequest) -> None:
    if "sec_stack" in request.fixturenames:
        s: PrivateStack = request.getfixturevalue("sec_stack")
        s.ensure_running()


@dataclass
class World:
    """Tenant A's resources. ``markers`` are strings that only A's data contains."""

    tenant: str
    admin: str  # sub
    employee: str  # sub (unique per run, so it is a marker too)
    team: str
    ids: dict[str, str] = field(default_factory=dict)  # path/query parameter name -> A's value
    markers: set[str] = field(default_factory=set)
    share_code: str = ""
    destination: str = ""
    click_ids: list[str] = field(default_factory=list)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def build_world(s: PrivateStack, *, counted: bool = True) -> World:
    """Tenant A's world; ``counted=False`` does not wait for metrics to count its clicks."""
    tag = uuid.uuid4().hex[:8]
    w = World(tenant=f"ta-{tag}", admin=f"boss-{tag}", employee=f"alice-{tag}", team=f"team-{tag}")
    admin = s.token(w.tenant, w.admin, "admin", team=w.team, name=f"Boss {tag}")
    alice = s.token(w.tenant, w.employee, "employee", team=w.team, name=f"Alice {tag}")
    secret = f"SECRET-{tag}"
    w.destination = f"https://example.com/a-{tag}?ref=news"
    now = datetime.now(UTC)
    async with s.client("content", admin) as c:
        # a partner webhook endpoint first, so the content below queues a delivery to it (never sent:
        # the name does not resolve)
        r = await c.post(
            "/v1/partner/webhook-endpoints", json={"partner_id": "crm", "url": f"https://hooks-{tag}.invalid/in"}
        )
        assert r.status_code == 201, r.text
        w.ids["endpoint_id"] = r.json()["id"]
        r = await c.post("/v1/content", json={"title": f"{secret} launch", "url": w.destination, "tags": ["launch"]})
        assert r.status_code == 201, r.text
        w.ids["content_id"] = r.json()["id"]
        r = await c.post(
            "/v1/waves",
            json={"name": f"{secret} wave", "starts_at": _iso(now - timedelta(days=1)), "teams": [w.team]},
        )
        assert r.status_code == 201, r.text
        w.ids["wave_id"] = r.json()["id"]
    async with s.client("content", alice) as c:
        r = await c.post(
            "/v1/content/suggestions",
            json={"title": f"{secret} idea", "url": f"https://example.com/idea-{tag}", "note": secret},
        )
        assert r.status_code == 201, r.text
        w.ids["suggestion_id"] = r.json()["id"]
        r = await c.post(
            "/v1/coaching/requests", json={"network": "linkedin", "draft": f"{secret} draft", "question": "ok?"}
        )
        assert r.status_code == 201, r.text
        w.ids["request_id"] = r.json()["id"]
        r = await c.put("/v1/me/topics", json={"topics": [f"topic-{tag}"]})
        assert r.status_code == 200, r.text
    async with s.client("sharing", alice) as c:

        async def share() -> dict[str, Any] | None:
            r = await c.post("/v1/shares", json={"content_id": w.ids["content_id"], "network": "linkedin"})
            if r.status_code == 404:
                return None
            assert r.status_code == 201, r.text
            return dict(r.json())

        created = await eventually(share, timeout=30, what="sharing learns A's content")
        w.share_code = created["code"]
        w.ids["share_id"] = created["id"]
        r = await c.put("/v1/accounts/linkedin", json={"handle": f"handle-{tag}", "audience_size": 4321})
        assert r.status_code == 200, r.text
    async with httpx.AsyncClient(base_url=s.url("sharing"), timeout=10) as c:
        for i in range(3):
            r = await c.get(
                f"/r/{w.share_code}",
                headers={
                    "X-Forwarded-For": visitor_ip(i + 77),
                    "User-Agent": BROWSER_UAS[i],
                    "Accept-Language": ACCEPT_LANGUAGE,
                },
            )
            assert r.status_code == 302, r.text
            loc = r.headers["location"]
            w.click_ids.append(loc.split("adv_click=")[1].split("&")[0])
    async with s.client("sharing", admin) as c:  # a partner of A, with its own conversion secret
        r = await c.post("/v1/partners", json={"id": f"partner-{tag}", "name": f"{secret} partner"})
        assert r.status_code == 201, r.text
        w.ids["partner_id"] = r.json()["id"]
    async with s.client("gamification", admin) as g:
        r = await g.post("/v1/rewards", json={"name": f"{secret} mug", "cost_points": 1, "stock": 5})
        assert r.status_code == 201, r.text
        w.ids["reward_id"] = r.json()["id"]
        r = await g.post(
            "/v1/challenges",
            json={
                "name": f"{secret} sprint",
                "starts_at": _iso(now - timedelta(days=1)),
                "ends_at": _iso(now + timedelta(days=7)),
                "goal": {"kind": "threshold", "value": 5},
            },
        )
        assert r.status_code == 201, r.text
        w.ids["challenge_id"] = r.json()["id"]
    async with s.client("gamification", alice) as g:

        async def redeem() -> dict[str, Any] | None:
            r = await g.post(f"/v1/rewards/{w.ids['reward_id']}/redeem", headers={"Idempotency-Key": f"k-{tag}"})
            if r.status_code == 409:  # points not there yet
                return None
            assert r.status_code in (200, 201), r.text
            return dict(r.json())

        redemption = await eventually(redeem, timeout=30, interval=0.3, what="alice earns points and redeems")
        w.ids["redemption_id"] = redemption["id"]
    async with s.client("metrics", admin) as m:

        async def clicks_counted() -> bool:
            r = await m.get(f"/v1/metrics/employees/{w.employee}")
            return r.status_code == 200 and r.json()["clicks"] == 3

        if counted:
            await eventually(clicks_counted, timeout=30, interval=0.3, what="metrics counts A's clicks")
    async with s.client("content", admin) as c:

        async def delivery() -> str | None:
            r = await c.get("/v1/partner/webhook-deliveries", params={"endpoint_id": w.ids["endpoint_id"]})
            items = r.json()["items"] if r.status_code == 200 else []
            return str(items[-1]["id"]) if items else None

        w.ids["delivery_id"] = await eventually(delivery, timeout=30, interval=0.3, what="a webhook delivery of A")
    # names that appear in path or query parameters
    w.ids["employee_id"] = w.employee
    w.ids["challenge"] = w.ids["challenge_id"]
    w.ids["team"] = w.team
    w.ids["link_code"] = w.share_code
    w.ids["code"] = w.share_code
    w.ids["ids"] = w.ids["content_id"]  # content's list by ids (GET /v1/content?ids=)
    w.markers = {secret, w.employee, w.team, w.share_code, f"handle-{tag}", *w.click_ids}
    w.markers |= {v for k, v in w.ids.items() if k.endswith("_id")}
    w.markers.discard(w.ids["delivery_id"])  # a small number: it would "leak" in any count or time
    return w


@pytest.fixture(scope="session")
async def world(sec_stack: PrivateStack) -> World:
    return await build_world(sec_stack)
