"""Sharing's copy of the company directory (issue 17), kept from content's member.provisioned on the
real broker and database: a deactivated person's new share is a 403 ``inactive`` while their link
keeps answering 302; the directory's team, department and location decide which items are theirs;
an older record never replaces a newer one; erasure removes the copy and a late record does not
bring it back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from advocacy_common.events import new_event
from advocacy_common.events.content import MemberErased, MemberProvisioned
from tests.integration.test_sharing_eligibility import SOURCE, _equals, publish_targeted, try_share, until
from tests.support.sharing import Sharing

LISTED = "select active, team, department, location from directory_copies where tenant_id = :t and employee_id = :e"


def tenant_and_content() -> tuple[str, str]:
    return f"t-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"


def provisioned(tenant: str, employee: str, at: datetime, *, active: bool = True, **attrs: Any) -> Any:
    return new_event(
        SOURCE,
        tenant,
        MemberProvisioned(
            employee_id=employee, user_name=f"{employee}@example.com", active=active, updated_at=at, **attrs
        ),
    )


async def listed(sharing: Sharing, tenant: str, employee: str) -> Any:
    rows = await sharing.rows(LISTED, t=tenant, e=employee)
    return tuple(rows[0]) if rows else None


async def test_a_deactivated_person_cannot_share_but_their_link_still_redirects(sharing: Sharing) -> None:
    tenant, content = tenant_and_content()
    await publish_targeted(sharing, tenant, content)
    at = datetime.now(UTC)
    await sharing.publish(provisioned(tenant, "ann", at, team="sales"))
    assert await until(lambda: listed(sharing, tenant, "ann"))
    token = sharing.mint(tenant, "ann", "employee", team="sales", name="Ann")
    async with sharing.client(token) as c:
        first = await c.post("/v1/shares", json={"content_id": content, "network": "linkedin"})
    assert first.status_code == 201, first.text
    code = first.json()["code"]

    await sharing.publish(provisioned(tenant, "ann", at + timedelta(seconds=1), active=False, team="sales"))
    assert await until(lambda: _equals(listed(sharing, tenant, "ann"), (False, "sales", None, None)))
    r = await try_share(sharing, tenant, "ann", content, team="sales", network="x")
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "inactive" and "deactivated" in error["message"]
    assert error["details"][0]["field"] == "employee_id"
    # the same share again is refused too (not handed back as an existing one)
    again = await try_share(sharing, tenant, "ann", content, team="sales", network="linkedin")
    assert again.status_code == 403
    assert await sharing.scalar("select count(*) from shares where tenant_id = :t", t=tenant) == 1
    async with sharing.client() as c:
        hop = await c.get(f"/r/{code}")
    assert hop.status_code == 302

    # an older record arriving late does not reactivate them; a newer one does
    await sharing.publish(provisioned(tenant, "ann", at - timedelta(minutes=5), team="sales"))
    await sharing.publish(provisioned(tenant, "ann", at + timedelta(seconds=2), team="sales", location="Oslo"))
    assert await until(lambda: _equals(listed(sharing, tenant, "ann"), (True, "sales", None, "Oslo")))
    assert (await try_share(sharing, tenant, "ann", content, team="sales", network="x")).status_code == 201


async def test_the_directory_team_department_and_location_decide_the_audience(sharing: Sharing) -> None:
    tenant, for_sales = tenant_and_content()
    _, for_legal_in_lyon = tenant_and_content()
    await publish_targeted(sharing, tenant, for_sales, teams=["sales"])
    await publish_targeted(sharing, tenant, for_legal_in_lyon, departments=["legal"], locations=["Lyon"])
    at = datetime.now(UTC)
    await sharing.publish(provisioned(tenant, "bea", at, team="sales", department="legal", location="Lyon"))
    await sharing.publish(provisioned(tenant, "cid", at, team="ops", department="legal", location="Oslo"))
    assert await until(lambda: listed(sharing, tenant, "cid"))
    # bea's token says "ops", the directory says "sales": the directory wins, and the share carries it
    r = await try_share(sharing, tenant, "bea", for_sales, team="ops")
    assert r.status_code == 201, r.text
    team = "select team from shares where tenant_id = :t and employee_id = 'bea'"
    assert await sharing.scalar(team, t=tenant) == "sales"
    assert (await try_share(sharing, tenant, "bea", for_legal_in_lyon, team="ops")).status_code == 201
    # cid: the token says "sales", the directory "ops"; legal but in Oslo
    r = await try_share(sharing, tenant, "cid", for_sales, team="sales")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_targeted")
    r = await try_share(sharing, tenant, "cid", for_legal_in_lyon, team="sales")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_targeted")
    assert "locations" in r.json()["error"]["message"]
    # someone the directory does not list: their token's team, and no department
    assert (await try_share(sharing, tenant, "dee", for_sales, team="sales")).status_code == 201
    r = await try_share(sharing, tenant, "dee", for_legal_in_lyon, team="sales")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_targeted")


async def test_erasure_removes_the_copy_and_a_late_record_does_not_bring_it_back(sharing: Sharing) -> None:
    tenant, _ = tenant_and_content()
    at = datetime.now(UTC)
    await sharing.publish(provisioned(tenant, "eve", at, team="sales", department="legal"))
    assert await until(lambda: listed(sharing, tenant, "eve"))
    admin = sharing.mint(tenant, "boss", "admin", team="x", name="Boss")
    async with sharing.client(admin) as c:
        export = await c.get("/v1/data-export/sharing/eve")
    assert export.status_code == 200, export.text
    rows = export.json()["sections"]["directory"]["items"]
    assert [(r["active"], r["department"]) for r in rows] == [(True, "legal")]
    await sharing.publish(new_event(SOURCE, tenant, MemberErased(employee_id="eve", erased_at=datetime.now(UTC))))
    assert await until(lambda: _equals(listed(sharing, tenant, "eve"), None))
    late = provisioned(tenant, "eve", at + timedelta(seconds=1), team="sales")
    await sharing.publish(late)
    consumed = "select 1 from inbox where event_id = :i"
    assert await until(lambda: sharing.scalar(consumed, i=late.id))
    assert await listed(sharing, tenant, "eve") is None
