"""A person erased by SCIM ``DELETE`` and provisioned again under the same employee id stays erased
(docs/identity.md, "Leavers and rehires"): content accepts the new SCIM user and publishes
``member.provisioned`` again, but the erasure's tombstone stays, and the other services drop that
record for it (tests/integration/test_directory_sharing.py and test_gamification_directory.py: "a
late record does not bring it back"). A rehire is provisioned under a new employee id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_content.adapters.tombstones import TOMBSTONES
from tests.integration.scim_server import ScimServer, serving_scim
from tests.integration.test_scim_directory import create, entra_user, events

pytestmark = pytest.mark.integration

A = "acme"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
async def scim(new_database: str, dev_keys: DevKeys, mint: Callable[..., str]) -> AsyncIterator[ScimServer]:
    async with serving_scim(new_database, dev_keys, mint, [A]) as server:
        yield server


async def erased(server: ScimServer, employee_id: str) -> bool:
    engine = make_engine(server.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as s:
            return await TOMBSTONES.is_erased(s, A, employee_id)
    finally:
        await engine.dispose()


async def test_reprovisioning_an_erased_employee_id_keeps_the_tombstone(scim: ScimServer) -> None:
    body = entra_user("ray")
    oid = body["externalId"]
    async with scim.client(A) as c:
        first = await create(c, "/Users", body)
        assert not await erased(scim, oid)
        assert (await c.delete(f"/Users/{first['id']}")).status_code == 204
        assert await erased(scim, oid)
        # the identity provider restores the account (same object id): the directory takes it ...
        again = await create(c, "/Users", body)
        assert again["id"] != first["id"] and again["externalId"] == oid
    # ... and announces it, but the person is still erased: every copy-keeping service drops the record
    assert await erased(scim, oid)
    kinds = [(kind, e["employee_id"]) for kind, e in await events(scim, A) if e.get("employee_id") == oid]
    # (the erasure scrubbed the outbox of what it held about them: the first record is gone)
    assert kinds == [("io.advocacy.member.erased.v1", oid), ("io.advocacy.member.provisioned.v1", oid)]
    # a rehire under a new employee id (a new account) is a new person
    async with scim.client(A) as c:
        rehire = entra_user("ray.b")  # a new account: new object id, new login
        await create(c, "/Users", rehire)
    assert not await erased(scim, rehire["externalId"])


async def test_an_erased_person_is_refused_the_board_and_counts_in_no_team(
    scim: ScimServer, mint: Callable[..., str]
) -> None:
    """A token issued before the erasure, and the same employee id provisioned again: the board is
    403 ``erased`` (as sharing refuses their shares), and the team they are put in does not count them."""
    body = entra_user("sam")
    oid = body["externalId"]
    async with scim.client(A) as c:
        sam = await create(c, "/Users", body)
        other = await create(c, "/Users", entra_user("kit"))
    employee = {"Authorization": f"Bearer {mint(A, oid, 'employee')}"}
    async with httpx.AsyncClient(base_url=scim.base) as http:
        assert (await http.get("/v1/content", headers=employee)).status_code == 200
        async with scim.client(A) as c:
            assert (await c.delete(f"/Users/{sam['id']}")).status_code == 204
        r = await http.get("/v1/content", headers=employee)
        assert r.status_code == 403 and r.json()["error"]["code"] == "erased", r.text
        r = await http.post(
            "/v1/content/suggestions", headers=employee, json={"title": "Mine", "url": "https://example.com/mine"}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "erased", r.text
        # the identity provider restores the account: active again, in a group; still erased
        async with scim.client(A) as c:
            again = await create(c, "/Users", body)
            await create(
                c,
                "/Groups",
                {
                    "schemas": [GROUP],
                    "displayName": "Team West",
                    "members": [{"value": again["id"]}, {"value": other["id"]}],
                },
            )
        r = await http.get("/v1/content", headers=employee)
        assert r.status_code == 403 and r.json()["error"]["code"] == "erased", r.text
        # someone else in the same tenant is not affected
        kit = {"Authorization": f"Bearer {mint(A, other['externalId'], 'employee')}"}
        assert (await http.get("/v1/content", headers=kit)).status_code == 200
    sizes = [(e["team"], e["size"]) for kind, e in await events(scim, A) if kind == "io.advocacy.team.updated.v1"]
    assert sizes[-1] == ("Team West", 1)
