"""A person erased by SCIM ``DELETE`` and provisioned again under the same employee id stays erased
(docs/identity.md, "Leavers and rehires"): content accepts the new SCIM user and publishes
``member.provisioned`` again, but the erasure's tombstone stays, and the other services drop that
record for it (tests/integration/test_directory_sharing.py and test_gamification_directory.py: "a
late record does not bring it back"). A rehire is provisioned under a new employee id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_content.adapters.tombstones import TOMBSTONES
from tests.integration.scim_server import ScimServer, serving_scim
from tests.integration.test_scim_directory import create, entra_user, events

pytestmark = pytest.mark.integration

A = "acme"


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
