"""Issue 17's lifecycle acceptance through the running services: a directory of 50 people in 3
groups, one deactivated, one deleted.

- Provisioned: Entra ID style tokens for them are accepted (every service trusts a test issuer with
  the ``entra`` preset; its tokens carry no team), the teams are the groups (the team board lists the
  three with the directory's sizes, and the shares count for them) and adoption's denominator is 50.
- Deactivated: off the leaderboard, their next share is 403 ``inactive``, their link still answers
  302 and the click earns nothing (0 points, ``member_inactive``); the denominator is 49.
- Deleted: the erasure runs in every service (each service's data export of them is empty, a later
  share is 403 ``erased``); the denominator is 48.

The directory is driven through content's SCIM provider (``/scim/v2``, with the secret an admin
rotates) when the content service has it; otherwise the test publishes what content would (member
.provisioned, team.updated) on the real broker and erases through content's member route, which is
what a SCIM delete triggers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from aiokafka import AIOKafkaProducer

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberProvisioned, TeamUpdated
from tests.e2e.conftest import ENTRA_TENANT, E2EStack
from tests.support.helpers import click, eventually

GROUPS = {"red": 17, "green": 17, "blue": 16}  # 50 people
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONTENT_SOURCE = "/advocacy/content"
log = logging.getLogger(__name__)


def people() -> list[tuple[str, str]]:
    """(employee id, group) for the 50: red-00 ... blue-15."""
    return [(f"{g}-{i:02d}", g) for g, n in GROUPS.items() for i in range(n)]


class Directory(Protocol):
    async def provision(self, members: list[tuple[str, str]]) -> None: ...
    async def deactivate(self, employee_id: str) -> None: ...
    async def delete(self, employee_id: str) -> None: ...


@dataclass
class ScimDirectory:
    """Content's SCIM provider, as an identity provider drives it."""

    scim: httpx.AsyncClient
    content_admin: httpx.AsyncClient
    ids: dict[str, str] = field(default_factory=dict)  # employee id -> SCIM user id

    async def provision(self, members: list[tuple[str, str]]) -> None:
        by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
        for emp, group in members:
            r = await self.scim.post(
                "/scim/v2/Users",
                json={"schemas": [SCIM_USER], "userName": f"{emp}@example.com", "externalId": emp, "active": True},
            )
            assert r.status_code == 201, r.text
            self.ids[emp] = r.json()["id"]
            by_group[group].append(self.ids[emp])
        for group, ids in by_group.items():
            r = await self.scim.post(
                "/scim/v2/Groups",
                json={"schemas": [SCIM_GROUP], "displayName": group, "members": [{"value": i} for i in ids]},
            )
            assert r.status_code == 201, r.text

    async def deactivate(self, employee_id: str) -> None:
        r = await self.scim.patch(
            f"/scim/v2/Users/{self.ids[employee_id]}",
            json={"schemas": [SCIM_PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
        )
        assert r.status_code in (200, 204), r.text

    async def delete(self, employee_id: str) -> None:
        r = await self.scim.delete(f"/scim/v2/Users/{self.ids[employee_id]}")
        assert r.status_code == 204, r.text


@dataclass
class EventDirectory:
    """What content publishes for its directory, sent on the real broker (before content has SCIM)."""

    producer: AIOKafkaProducer
    tenant: str
    content_admin: httpx.AsyncClient
    teams: dict[str, str] = field(default_factory=dict)
    clock: datetime = field(default_factory=lambda: datetime.now(UTC))

    def _tick(self) -> datetime:
        self.clock += timedelta(milliseconds=1)
        return self.clock

    async def _send(self, env: Envelope[Any]) -> None:
        await asyncio.wait_for(
            self.producer.send(env.topic, env.value(), key=env.key.encode(), headers=env.headers()), 10
        )

    def _record(self, emp: str, *, active: bool) -> Envelope[Any]:
        return new_event(
            CONTENT_SOURCE,
            self.tenant,
            MemberProvisioned(
                employee_id=emp,
                user_name=f"{emp}@example.com",
                display_name=emp.title(),
                active=active,
                team=self.teams[emp],
                updated_at=self._tick(),
            ),
        )

    async def provision(self, members: list[tuple[str, str]]) -> None:
        for emp, group in members:
            self.teams[emp] = group
            await self._send(self._record(emp, active=True))
        for group in GROUPS:
            size = sum(1 for g in self.teams.values() if g == group)
            await self._send(
                new_event(CONTENT_SOURCE, self.tenant, TeamUpdated(team=group, size=size, updated_at=self._tick()))
            )
        await self.producer.flush()

    async def deactivate(self, employee_id: str) -> None:
        await self._send(self._record(employee_id, active=False))
        await self.producer.flush()

    async def delete(self, employee_id: str) -> None:
        r = await self.content_admin.delete(f"/v1/members/{employee_id}")
        assert r.status_code == 204, r.text


async def _scim_available(content_admin: httpx.AsyncClient) -> str | None:
    """The tenant's SCIM bearer secret when content serves SCIM, else None."""
    r = await content_admin.post("/v1/scim/secret/rotate")
    if r.status_code == 404 or r.status_code == 405:
        return None
    assert r.status_code in (200, 201), r.text
    return str(r.json()["secret"])


async def test_fifty_provisioned_one_deactivated_one_deleted(stack: E2EStack) -> None:
    t = ENTRA_TENANT  # the tenant the Entra-style issuer's directory maps to
    admin = stack.token(t, "boss", "admin")
    members = people()
    ann, bea, cid = "red-00", "green-00", "blue-00"  # ann: deactivated; cid: deleted
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap, acks="all")
    await producer.start()
    async with (
        stack.client("content", admin) as content,
        stack.client("metrics", admin) as metrics,
        stack.client("gamification", admin) as gam,
        stack.client("sharing", admin) as sharing_admin,
    ):
        try:
            secret = await _scim_available(content)
            directory: Directory
            if secret is not None:
                scim = httpx.AsyncClient(
                    base_url=stack.url("content"), headers={"Authorization": f"Bearer {secret}"}, timeout=10
                )
                directory = ScimDirectory(scim, content)
            else:
                directory = EventDirectory(producer, t, content)
            log.info("directory driven by %s", type(directory).__name__)
            await directory.provision(members)

            item = await content.post("/v1/content", json={"title": "Launch", "url": "https://example.com/launch"})
            assert item.status_code == 201, item.text
            content_id = item.json()["id"]

            async def adoption(eligible: int) -> dict[str, Any] | None:
                body = (await metrics.get("/v1/metrics/adoption")).json()
                return body if body["eligible"] == eligible else None

            report = await eventually(lambda: adoption(50), timeout=30, what="adoption's denominator of 50")
            assert report["eligible_source"] == "directory"

            async def share(emp: str, network: str = "linkedin") -> httpx.Response:
                async with stack.client("sharing", stack.entra_token(emp)) as c:
                    return await c.post("/v1/shares", json={"content_id": content_id, "network": network})

            async def shared(emp: str) -> dict[str, Any] | None:
                r = await share(emp)
                return r.json() if r.status_code == 201 else None

            # the directory's copies reach sharing: the share carries the group (the token has no team)
            links: dict[str, dict[str, Any]] = {}
            for emp in (ann, bea, cid):
                links[emp] = await eventually(functools.partial(shared, emp), timeout=30, what=f"{emp} shares")

            async def team_board() -> dict[str, tuple[int, int]] | None:
                items = (await gam.get("/v1/leaderboard/teams", params={"window": "all"})).json()["items"]
                got = {i["team"]: (i["members"], i["points"]) for i in items}
                return got if got == {"red": (17, 10), "green": (17, 10), "blue": (16, 10)} else None

            await eventually(team_board, timeout=30, what="the team board of the three groups")

            async def board() -> list[str]:
                items = (await gam.get("/v1/leaderboard", params={"window": "all", "limit": 100})).json()["items"]
                return [i["employee_id"] for i in items]

            # -- deactivate ann ------------------------------------------------------------------------
            await directory.deactivate(ann)

            async def off_the_board() -> bool:
                return ann not in await board() and bea in await board()

            await eventually(off_the_board, timeout=30, what="ann off the leaderboard")
            r = await eventually(lambda: _refused(share(ann, "x")), timeout=30, what="ann's next share refused")
            assert r.json()["error"]["code"] == "inactive", r.text
            async with stack.client("sharing") as visitor:
                assert await click(visitor, links[ann]["code"], visitor=1701) == 302
                assert await click(visitor, links[bea]["code"], visitor=1702) == 302

            async def clicks_scored() -> list[Any] | None:
                async def ledger(emp: str) -> list[Any]:
                    async with stack.client("gamification", stack.entra_token(emp)) as c:
                        return [i for i in (await c.get("/v1/points/me")).json()["items"] if i["action"] == "click"]

                mine, hers = await ledger(ann), await ledger(bea)
                return [mine, hers] if mine and hers else None

            ann_clicks, bea_clicks = await eventually(clicks_scored, timeout=30, what="both clicks in the ledgers")
            assert [(c["points"], c["reason"]) for c in ann_clicks] == [(0, "member_inactive")]
            assert [c["points"] for c in bea_clicks] == [1]
            assert ann not in await board()
            await eventually(lambda: adoption(49), timeout=30, what="adoption's denominator of 49")

            # -- delete cid: the erasure in every service ----------------------------------------------
            await directory.delete(cid)

            async def erased_everywhere() -> bool:
                for svc in ("content", "sharing", "gamification", "metrics"):
                    async with stack.client(svc, admin) as c:
                        r = await c.get(f"/v1/data-export/{svc}/{cid}")
                        assert r.status_code == 200, r.text
                        if any(s["items"] for s in r.json()["sections"].values()):
                            return False
                return True

            await eventually(erased_everywhere, timeout=30, what="cid's data gone from every service")
            r = await share(cid, "x")
            assert (r.status_code, r.json()["error"]["code"]) == (403, "erased")
            await eventually(lambda: adoption(48), timeout=30, what="adoption's denominator of 48")
            mine = (await sharing_admin.get("/v1/shares", params={"employee_id": cid})).json()["items"]
            assert mine == []
        finally:
            await producer.stop()


async def _refused(pending: Any) -> httpx.Response | None:
    r: httpx.Response = await pending
    return r if r.status_code == 403 else None
