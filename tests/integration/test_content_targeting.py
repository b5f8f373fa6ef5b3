"""Targeting by the directory's department and location (issue 17, item 4): the content API takes
``audience.departments`` and ``audience.locations`` (bounded; 422 naming the field), the events
carry them, and the board filters by the person's directory record. The board's SQL and
:func:`advocacy_common.eligibility.refusal` (sharing's check) agree on generated audiences, people
and roll-out waves, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from advocacy_common import eligibility
from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.errors import Forbidden
from advocacy_common.migrations import upgrade
from advocacy_common.pagination import PageParams
from advocacy_content.adapters.scim import MAX_VALUE_CHARS
from advocacy_content.db import ContentItem, Member, ScimUsers, Wave
from advocacy_content.features import board
from advocacy_content.schemas import DirectoryValue
from tests.integration.scim_server import ScimServer, serving_scim
from tests.integration.test_scim_directory import ENTERPRISE, entra_user, events

pytestmark = pytest.mark.integration

A = "acme"


def test_audience_values_are_as_long_as_the_directory_keeps() -> None:
    """An admin can target any department or location the directory can hold, and no longer one."""
    value = TypeAdapter(DirectoryValue)
    assert value.validate_python("x" * MAX_VALUE_CHARS)
    with pytest.raises(ValidationError):
        value.validate_python("x" * (MAX_VALUE_CHARS + 1))


# -- the board's SQL and eligibility.refusal agree ------------------------------------------------------
TEAMS = ["sales", "support"]
DEPARTMENTS = ["Sales", "R&D", "sales"]  # "sales" and "Sales" differ: both sides compare exactly
LOCATIONS = ["Lyon", "Paris"]
ROLES = ["sharer", "creator", "champion"]


def subset(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), unique=True, max_size=len(values))


audiences = st.fixed_dictionaries(
    {"teams": subset(TEAMS), "departments": subset(DEPARTMENTS), "locations": subset(LOCATIONS)},
    optional={"programme_roles": subset(ROLES)},  # items written before a dimension existed lack its key
)
items_st = st.lists(
    st.tuples(
        audiences,
        st.sampled_from(["published", "published", "published", "scheduled", "expired"]),
        st.sampled_from([None, None, -1, 1]),  # expires: never, an hour ago, in an hour
    ),
    min_size=1,
    max_size=8,
)
# the directory's record: None (never provisioned), else active, team, department, location; a
# blank value is what a SCIM client may send and names nothing
blank_or = st.sampled_from
listing = st.none() | st.tuples(
    st.booleans(),
    blank_or([None, "", *TEAMS]),
    blank_or([None, "", *DEPARTMENTS]),
    blank_or([None, "", *LOCATIONS]),
)
membership = st.none() | st.tuples(st.booleans(), subset(ROLES))
wave = st.none() | st.tuples(subset(TEAMS), st.booleans(), st.booleans())  # teams, has me, started


async def agree(
    url: str,
    items: list[tuple[dict[str, list[str]], str, int | None]],
    listed: tuple[bool, str | None, str | None, str | None] | None,
    token_team: str | None,
    member: tuple[bool, list[str]] | None,
    rollout: tuple[list[str], bool, bool] | None,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    at = datetime.now(UTC)
    engine = create_async_engine(url, poolclass=NullPool)
    sm = make_sessionmaker(engine)
    rows = [
        ContentItem(
            id=f"{tenant}-c{n}",
            tenant_id=tenant,
            title=f"Item {n}",
            url=f"https://example.com/{n}",
            slug=f"item-{n}",
            audience={**audience, "topics": []},
            status=status,
            expires_at=None if hours is None else at + timedelta(hours=hours),
            published_at=at - timedelta(minutes=n + 1),
            created_by="admin",
            created_at=at,
            updated_at=at,
        )
        for n, (audience, status, hours) in enumerate(items)
    ]
    try:
        async with sm() as s, s.begin():
            s.add_all(rows)
            if member is not None:
                s.add(
                    Member(
                        tenant_id=tenant,
                        employee_id="pat",
                        enrolled=member[0],
                        programme_roles=member[1],
                        updated_at=at,
                    )
                )
            if rollout is not None:
                teams, has_me, started = rollout
                s.add(
                    Wave(
                        id=f"w-{tenant}",
                        tenant_id=tenant,
                        name="pilot",
                        starts_at=at + timedelta(days=-1 if started else 1),
                        teams=teams,
                        employees=["pat"] if has_me else [],
                        created_by="admin",
                        created_at=at,
                        updated_at=at,
                    )
                )
            if listed is not None:
                active, team, department, location = listed
                await s.execute(
                    sa.insert(ScimUsers).values(
                        tenant_id=tenant, id="u1", employee_id="pat", user_name="pat", user_name_key="pat",
                        active=active, team=team, department=department, location=location,
                        resource={}, version=1, created_at=at, updated_at=at,
                    )
                )  # fmt: skip
        who = Principal(sub="pat", tenant_id=tenant, roles=frozenset({"employee"}), team=token_team, name="Pat")
        # what sharing would judge: the directory's values when it lists the person, else the token's team
        viewer = eligibility.Viewer(
            team=(listed[1] if listed is not None and listed[1] else None) or token_team,
            programme_roles=frozenset(member[1] if member else ()),
            department=listed[2] if listed else None,
            location=listed[3] if listed else None,
        )
        waves = (
            [
                eligibility.WaveView(
                    "w",
                    "pilot",
                    at + timedelta(days=-1 if rollout[2] else 1),
                    teams=frozenset(rollout[0]),
                    employees=frozenset({"pat"} if rollout[1] else ()),
                )
            ]
            if rollout is not None
            else []
        )
        verdicts = {
            r.id: eligibility.refusal(
                status=r.status,
                expires_at=r.expires_at,
                audience=r.audience,
                employee_id="pat",
                viewer=viewer,
                enrolled=member[0] if member else True,
                waves=waves,
                now=at,
                active=listed[0] if listed else True,
            )
            for r in rows
        }
        async with sm() as s, s.begin():
            try:
                page = await board.list_board(
                    s, who, PageParams(limit=100, cursor=None), board.BoardFilters(), link_sample=None
                )
            except Forbidden:
                assert all(v is not None and v.code == eligibility.Reason.inactive for v in verdicts.values())
                return
        assert {i.id for i in page.items} == {i for i, v in verdicts.items() if v is None}, verdicts
        assert page.next_cursor is None
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def targeting_url(pg: Any) -> str:
    url: str = pg.create_database(f"tgt_{uuid.uuid4().hex[:10]}")
    upgrade("advocacy_content", url)
    return url


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items_st, listing, st.sampled_from([None, *TEAMS]), membership, wave)
def test_the_board_and_sharing_judge_every_audience_alike(
    targeting_url: str,
    items: list[tuple[dict[str, list[str]], str, int | None]],
    listed: tuple[bool, str | None, str | None, str | None] | None,
    token_team: str | None,
    member: tuple[bool, list[str]] | None,
    rollout: tuple[list[str], bool, bool] | None,
) -> None:
    asyncio.run(agree(targeting_url, items, listed, token_team, member, rollout))


# -- over HTTP: the API, the events, the board --------------------------------------------------------
@pytest.fixture
async def scim(new_database: str, dev_keys: DevKeys, mint: Callable[..., str]) -> AsyncIterator[ScimServer]:
    async with serving_scim(new_database, dev_keys, mint, [A]) as server:
        yield server


def person(name: str, department: str | None, locality: str | None) -> dict[str, Any]:
    user = entra_user(name)
    user[ENTERPRISE].pop("department")
    if department is not None:
        user[ENTERPRISE]["department"] = department
    user.pop("addresses")
    if locality is not None:
        user["addresses"] = [{"type": "work", "primary": True, "locality": locality, "country": "FR"}]
    return user


async def test_departments_and_locations_target_the_board_and_travel_in_the_events(
    scim: ScimServer, mint: Callable[..., str]
) -> None:
    people = {"dee": ("Sales", "Lyon"), "eve": ("R&D", "Paris"), "cal": (None, None)}
    oids = {}
    async with scim.client(A) as c:
        for name, (department, locality) in people.items():
            r = await c.post("/Users", json=person(name, department, locality))
            assert r.status_code == 201, r.text
            oids[name] = r.json()["externalId"]
    admin = {"Authorization": f"Bearer {mint(A, 'root', 'admin')}"}

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(A, oids[name], 'employee')}"}

    async with httpx.AsyncClient(base_url=scim.base) as http:

        async def post(title: str, **audience: list[str]) -> str:
            body = {"title": title, "url": f"https://example.com/{title}", "audience": audience}
            r = await http.post("/v1/content", headers=admin, json=body)
            assert r.status_code == 201, r.text
            for dimension in ("departments", "locations"):  # stored once each, in the order given
                assert r.json()["audience"][dimension] == list(dict.fromkeys(audience.get(dimension, [])))
            return str(r.json()["id"])

        async def board_of(name: str) -> set[str]:
            r = await http.get("/v1/content", headers=as_(name))
            assert r.status_code == 200, r.text
            return {i["id"] for i in r.json()["items"]}

        sales = await post("sales", departments=["Sales", "Sales"])
        paris = await post("paris", locations=["Paris"])
        both = await post("sales-in-paris", departments=["Sales"], locations=["Paris"])
        everyone = await post("everyone")
        assert await board_of("dee") == {sales, everyone}
        assert await board_of("eve") == {paris, everyone}
        assert await board_of("cal") == {everyone}  # no department, no location: only untargeted items
        assert (await http.get(f"/v1/content/{sales}", headers=as_("eve"))).status_code == 404
        assert (await http.get(f"/v1/content/{paris}", headers=as_("eve"))).status_code == 200
        assert (await http.get(f"/v1/content/{both}", headers=as_("dee"))).status_code == 404

        # an edit moves the item: now for R&D anywhere
        r = await http.patch(f"/v1/content/{sales}", headers=admin, json={"audience": {"departments": ["R&D"]}})
        assert r.status_code == 200, r.text
        assert await board_of("dee") == {everyone}
        assert await board_of("eve") == {sales, paris, everyone}

        # the directory moves a person: dee relocates to Paris in Sales
        async with scim.client(A) as c:
            found = (await c.get("/Users", params={"filter": f'externalId eq "{oids["dee"]}"'})).json()["Resources"]
            patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": 'addresses[type eq "work"].locality', "value": "Paris"}],
            }
            r = await c.patch(f"/Users/{found[0]['id']}", json=patch)
            assert r.status_code == 200, r.text
        assert await board_of("dee") == {paris, both, everyone}

        # bounds: too many, too long, blank; each a 422 naming the field, nothing stored
        long = "x" * (MAX_VALUE_CHARS + 1)
        for audience, field in (
            ({"departments": [f"d{n}" for n in range(101)]}, "audience.departments"),
            ({"locations": [long]}, "audience.locations.0"),
            ({"departments": [""]}, "audience.departments.0"),
            ({"locations": "Paris"}, "audience.locations"),
        ):
            body = {"title": "bad", "url": "https://example.com/bad", "audience": audience}
            r = await http.post("/v1/content", headers=admin, json=body)
            assert r.status_code == 422, r.text
            assert field in [d["field"] for d in r.json()["error"]["details"]], r.json()
            r = await http.patch(f"/v1/content/{paris}", headers=admin, json={"audience": audience})
            assert r.status_code == 422, r.text
            assert field in [d["field"] for d in r.json()["error"]["details"]], r.json()
        r = await http.get(f"/v1/content/{paris}", headers=admin)
        assert r.json()["audience"]["locations"] == ["Paris"]

        # an item stored before departments and locations existed reads with them empty
        engine = make_engine(scim.database_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("UPDATE content_items SET audience = CAST(:a AS jsonb) WHERE id = :id"),
                    {"a": '{"teams": [], "programme_roles": [], "topics": []}', "id": everyone},
                )
        finally:
            await engine.dispose()
        r = await http.get(f"/v1/content/{everyone}", headers=as_("cal"))
        assert r.status_code == 200, r.text
        assert r.json()["audience"] == {
            k: [] for k in ("teams", "programme_roles", "topics", "departments", "locations")
        }

    published = {e["content_id"]: e["audience"] for _, e in await events(scim, A, "io.advocacy.content.published.v1")}
    assert published[sales]["departments"] == ["Sales"] and published[paris]["locations"] == ["Paris"]
    assert (published[both]["departments"], published[both]["locations"]) == (["Sales"], ["Paris"])
    updated = [e for _, e in await events(scim, A, "io.advocacy.content.updated.v1") if e["content_id"] == sales]
    assert [u["audience"]["departments"] for u in updated] == [["R&D"]]
