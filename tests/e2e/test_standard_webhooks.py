"""Issue 14, Standard Webhooks, end to end (the four services as processes, real PostgreSQL and
broker, partners' endpoints as real HTTP servers on loopback that verify every delivery with the
``standardwebhooks`` library): a secret rotation with no failed delivery, an endpoint that receives
only the types it chose, a 410 that disables an endpoint, a replay that sends a range once more and
a redelivery of one delivery, all through the admin API."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually
from tests.support.webhooks import VerifyingReceiver, serve

PUBLISHED = "io.advocacy.content.published.v1"
ARCHIVED = "io.advocacy.content.archived.v1"


def types(rx: VerifyingReceiver) -> list[str]:
    return sorted(body["type"] for _, body in rx.verified)


async def publish(c: httpx.AsyncClient, n: int) -> str:
    r = await c.post("/v1/content", json={"title": f"News {n}", "url": f"https://example.com/sw-{n}"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_rotation_filters_410_replay_and_redelivery(stack: E2EStack, new_tenant: str) -> None:
    crm, bi, old = VerifyingReceiver(), VerifyingReceiver(), VerifyingReceiver(status=410)
    admin = stack.token(new_tenant, "boss", "admin")
    since = datetime.now(UTC) - timedelta(seconds=5)
    async with (
        serve(crm) as crm_url,
        serve(bi) as bi_url,
        serve(old) as old_url,
        stack.client("content", admin) as c,
    ):
        # Endpoints: every type for the CRM, archivals only for the BI pipeline; a filter on a type
        # partners never see is refused.
        r = await c.post("/v1/partner/webhook-endpoints", json={"partner_id": "crm", "url": crm_url})
        assert r.status_code == 201, r.text
        ep_crm, crm.secrets = r.json()["id"], [r.json()["secret"]]
        assert r.json()["signature_scheme"] == "standard" and r.json()["secret"].startswith("whsec_")
        r = await c.post(
            "/v1/partner/webhook-endpoints", json={"partner_id": "bi", "url": bi_url, "event_types": [ARCHIVED]}
        )
        assert r.status_code == 201, r.text
        bi.secrets = [r.json()["secret"]]
        r = await c.post("/v1/partner/webhook-endpoints", json={"partner_id": "old", "url": old_url})
        ep_old, old.secrets = r.json()["id"], [r.json()["secret"]]
        r = await c.post(
            "/v1/partner/webhook-endpoints",
            json={"partner_id": "bi", "url": bi_url, "event_types": [ARCHIVED, "io.advocacy.member.updated.v1"]},
        )
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "event_types.1", r.text

        first = await publish(c, 1)

        async def crm_got(n: int) -> bool:
            return len(crm.verified) >= n

        await eventually(lambda: crm_got(1), timeout=30, what="first delivery")

        # The 410 endpoint is disabled, visibly; an admin re-enables it.
        async def disabled() -> Any:
            e = (await c.get(f"/v1/partner/webhook-endpoints/{ep_old}")).json()
            return e if not e["enabled"] else None

        gone = await eventually(disabled, timeout=30, what="endpoint disabled by its 410")
        assert "410" in gone["disabled_reason"]
        asked = len(old.requests)

        # Rotation: the partner still holds the old secret; deliveries carry both signatures.
        r = await c.post(f"/v1/partner/webhook-endpoints/{ep_crm}/secret/rotate")
        assert r.status_code == 200, r.text
        new_secret, until = r.json()["secret"], datetime.fromisoformat(r.json()["previous_valid_until"])
        assert until - datetime.now(UTC) > timedelta(hours=23)
        await publish(c, 2)
        await eventually(lambda: crm_got(2), timeout=30, what="delivery verified with the old secret")
        assert len(crm.requests[-1]["webhook-signature"].split(" ")) == 2
        crm.secrets = [new_secret]  # the partner switches
        r = await c.post(f"/v1/content/{first}/archive")
        assert r.status_code == 200, r.text
        await eventually(lambda: crm_got(3), timeout=30, what="delivery verified with the new secret")

        async def bi_got_archival() -> bool:
            return len(bi.verified) >= 1

        await eventually(bi_got_archival, timeout=30, what="the archival at the filtered endpoint")
        assert types(crm) == [ARCHIVED, PUBLISHED, PUBLISHED] and crm.refused == 0
        assert types(bi) == [ARCHIVED] and bi.refused == 0
        assert len(old.requests) == asked  # nothing more for a disabled endpoint

        r = await c.patch(f"/v1/partner/webhook-endpoints/{ep_old}", json={"enabled": True})
        assert r.status_code == 200 and r.json()["enabled"] is True, r.text

        # The delivery log: every CRM delivery delivered at the first attempt.
        r = await c.get("/v1/partner/webhook-deliveries", params={"endpoint_id": ep_crm, "limit": 2})
        page = r.json()
        assert len(page["items"]) == 2 and page["next_cursor"], page
        r = await c.get("/v1/partner/webhook-deliveries", params={"endpoint_id": ep_crm, "cursor": page["next_cursor"]})
        log = page["items"] + r.json()["items"]
        assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 1)] * 3

        # Replay the range: each of the three once more, and only once.
        r = await c.post(
            f"/v1/partner/webhook-endpoints/{ep_crm}/replay",
            json={"since": since.isoformat(), "until": datetime.now(UTC).isoformat()},
        )
        assert r.status_code == 202 and r.json() == {"replayed": 3}, r.text
        await eventually(lambda: crm_got(6), timeout=30, what="replayed deliveries")
        await asyncio.sleep(2)  # a second copy would come within the deliverer's poll (0.5 s)
        assert sorted(Counter(i for i, _ in crm.verified).values()) == [2, 2, 2] and crm.refused == 0

        # Redeliver one: once more, and its attempt log shows every round.
        one = log[0]["id"]
        r = await c.post(f"/v1/partner/webhook-deliveries/{one}/redeliver")
        assert r.status_code == 202, r.text
        await eventually(lambda: crm_got(7), timeout=30, what="redelivery")

        async def three_attempts() -> Any:
            d = (await c.get(f"/v1/partner/webhook-deliveries/{one}")).json()
            return d if d["status"] == "delivered" and len(d["attempt_log"]) == 3 else None

        detail = await eventually(three_attempts, timeout=10, what="attempt log")
        assert all(a["status_code"] == 204 and a["latency_ms"] is not None for a in detail["attempt_log"])

    async with stack.client("content", stack.token(new_tenant, "eve", "employee")) as employee:
        assert (await employee.post(f"/v1/partner/webhook-endpoints/{ep_crm}/replay", json={})).status_code == 403
