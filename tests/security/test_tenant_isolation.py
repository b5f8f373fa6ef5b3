"""Tenant isolation, generated from every service's OpenAPI document.

For every operation that takes an id (a path parameter, or a query parameter naming a resource:
``content_id``, ``employee_id``, ``challenge``...), tenant B calls it with tenant A's real ids
(created through the APIs in ``build_world``) under each staff role, and again with look-alike ids
nobody owns. The two answers must be the same (status and body, ids and timestamps blanked): a 404
for a 404, zeros for zeros, an empty list for an empty list. So B learns nothing, never a 403 that
confirms A's resource exists, never A's data, never a 500. List operations are called without ids
too (their optional ids left out): none of A's marker strings may appear. Finally A's own view of every resource is unchanged
(B's PATCH, DELETE, archive, approve, redeem, fulfil, cancel, erasure... on A's ids did nothing).

A route added later is covered without anyone editing this file; if it takes a path parameter no
A resource exists for yet, the test fails and says where to add one.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from tests.security.conftest import World
from tests.security.isolation_kit import build_request, call, is_enum, lookalike, normalized
from tests.security.openapi_kit import Operation, all_operations
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

ROLES = ("admin", "employee", "coach")
ID_NAMES = {"content_id", "employee_id", "challenge", "challenge_id", "team", "link_code", "code", "ids"}
# Bodies for routes whose minimal body is refused by validation whatever the tenant (so no role of B
# would reach the handler): the role matrix's values for the same routes.
BODIES: dict[str, Any] = {
    # a public address literal: the outbound guard accepts it without DNS
    "notifications:PUT /v1/notifications/channels/{channel}": {"url": "https://93.184.215.14/hook"},
    # 'off' is a frequency every category takes (the digest: daily/weekly/off; notices: on/off)
    "notifications:PUT /v1/notifications/defaults/categories/{category}/{channel}": {"frequency": "off"},
}
# Enum path values other than the first, where the first is refused whatever the body (the digest's
# default is set with PUT /defaults, a 422 on this route).
PATH_VALUES: dict[str, dict[str, str]] = {
    "notifications:PUT /v1/notifications/defaults/categories/{category}/{channel}": {"category": "badges"},
}


def _takes_ids(op: Operation) -> bool:
    return bool(op.params("path")) or any(p["name"] in ID_NAMES for p in op.params("query"))


ID_OPS = [op for op in all_operations() if _takes_ids(op) and not op.streams]


def _lists(op: Operation) -> bool:
    """A GET that answers without any id: no path parameter, its query ids all optional."""
    required = [p for p in op.params("query") if p["name"] in ID_NAMES and p.get("required")]
    return op.method == "get" and not op.params("path") and not required and not op.streams


LIST_OPS = [op for op in all_operations() if _lists(op)]


def test_the_documents_have_routes_to_attack() -> None:
    assert len(ID_OPS) >= 20, [op.id for op in ID_OPS]
    assert len(LIST_OPS) >= 10, [op.id for op in LIST_OPS]


async def _snapshot(s: PrivateStack, w: World) -> dict[str, Any]:
    admin = s.token(w.tenant, w.admin, "admin", team=w.team)
    alice = s.token(w.tenant, w.employee, "employee", team=w.team)
    reads = [
        ("content", admin, f"/v1/content/{w.ids['content_id']}"),
        ("content", admin, f"/v1/content/{w.ids['suggestion_id']}"),
        ("content", admin, f"/v1/waves/{w.ids['wave_id']}"),
        ("content", alice, f"/v1/coaching/requests/{w.ids['request_id']}"),
        ("content", alice, "/v1/me/topics"),
        ("content", alice, "/v1/me/membership"),
        ("content", admin, "/v1/tenant/settings"),
        ("content", admin, "/v1/policy"),
        ("sharing", alice, "/v1/shares"),
        ("sharing", alice, "/v1/accounts"),
        ("metrics", admin, f"/v1/metrics/employees/{w.employee}"),
        ("gamification", admin, f"/v1/rewards/{w.ids['reward_id']}"),
        ("gamification", admin, f"/v1/challenges/{w.ids['challenge_id']}"),
        ("gamification", admin, "/v1/redemptions"),
        ("gamification", alice, "/v1/points/me"),
        ("gamification", admin, "/v1/leaderboard"),
        ("gamification", admin, "/v1/rules"),
        ("notifications", alice, "/v1/notifications/preferences"),
        ("notifications", admin, "/v1/notifications/defaults"),
    ]
    out: dict[str, Any] = {}
    for svc, token, path in reads:
        async with s.client(svc, token) as c:
            r = await c.get(path)
        assert r.status_code == 200, (svc, path, r.status_code, r.text)
        out[f"{svc} {path}"] = normalized(r, {})
    return out


@pytest.fixture(scope="module")
async def before(sec_stack: PrivateStack, world: World) -> dict[str, Any]:
    return await _snapshot(sec_stack, world)


@pytest.mark.parametrize("op", ID_OPS, ids=[op.id for op in ID_OPS])
async def test_other_tenant_gets_what_a_stranger_gets(
    op: Operation, sec_stack: PrivateStack, world: World, before: dict[str, Any]
) -> None:
    tenant_b = f"tb-{uuid.uuid4().hex[:8]}"
    rng = random.Random(op.id)
    fake = {k: lookalike(v, rng) for k, v in world.ids.items()}
    reached_handler = False
    for role in ROLES:
        token = sec_stack.token(tenant_b, f"bob-{role}", role, team="b-team", name="Bob")
        async with sec_stack.client(op.svc, token) as c:
            extra = PATH_VALUES.get(op.id, {})
            with_a = await call(c, op, {**world.ids, **extra}, BODIES.get(op.id))
            with_fake = await call(c, op, {**fake, **extra}, BODIES.get(op.id))
        label = f"{op.id} as B {role} with A's ids"
        assert with_a.status_code < 500, (label, with_a.status_code, with_a.text)
        used_a = {v: "<id>" for k, v in world.ids.items()}
        used_fake = {v: "<id>" for k, v in fake.items()}
        got_a = normalized(with_a, used_a)
        assert got_a == normalized(with_fake, used_fake), (label, "differs from a nonexistent id", got_a)
        leaked = {m for m in world.markers if m in with_a.text and not _echoed(op, m, world)}
        assert not leaked, (label, leaked, with_a.text[:500])
        if with_fake.status_code not in (401, 403, 422):
            reached_handler = True
            assert with_a.status_code != 403, label
    assert reached_handler, f"{op.id}: no role of tenant B got past validation and role checks"


def _echoed(op: Operation, marker: str, w: World) -> bool:
    """A value B itself sent in the path or query may come back (e.g. ``employee_id``)."""
    path, query, _, _ = build_request(op, w.ids)
    return marker in path or marker in query.values()


@pytest.mark.parametrize("op", LIST_OPS, ids=[op.id for op in LIST_OPS])
async def test_lists_show_no_data_of_another_tenant(op: Operation, sec_stack: PrivateStack, world: World) -> None:
    tenant_b = f"tb-{uuid.uuid4().hex[:8]}"
    for role in (*ROLES, "partner"):
        token = sec_stack.token(tenant_b, f"bob-{role}", role, team=world.team, name="Bob")
        async with sec_stack.client(op.svc, token) as c:
            r = await call(c, op, {})
        assert r.status_code < 500, (op.id, role, r.status_code, r.text)
        # B's token names A's team: still nothing of A's
        leaked = {m for m in world.markers - {world.team} if m in r.text}
        assert not leaked, (op.id, role, leaked, r.text[:500])


async def test_a_sees_everything_unchanged_after_the_attacks(
    sec_stack: PrivateStack, world: World, before: dict[str, Any]
) -> None:
    await asyncio.sleep(3)  # any event B's calls caused (an erasure, a reversal) has been consumed
    assert await _snapshot(sec_stack, world) == before


async def test_enum_path_parameters_are_the_callers_own(sec_stack: PrivateStack, world: World) -> None:
    """``PUT /v1/accounts/{network}`` by B writes B's account, not A's (checked by the snapshot);
    here: B's account list shows B's handle only."""
    enum_ops = [op for op in ID_OPS if any(is_enum(op, p) for p in op.params("path"))]
    assert enum_ops
    token = sec_stack.token(f"tb-{uuid.uuid4().hex[:8]}", world.employee, "employee", team=world.team)
    async with sec_stack.client("sharing", token) as c:
        r = await c.get("/v1/accounts")
    assert r.status_code == 200
    assert not [m for m in world.markers if m.startswith("handle-") and m in r.text]


STREAM_OPS = [op for op in all_operations() if op.streams]


@pytest.mark.parametrize("op", STREAM_OPS, ids=[op.id for op in STREAM_OPS])
async def test_streams_of_another_tenant_show_nothing_of_a(
    op: Operation, sec_stack: PrivateStack, world: World
) -> None:
    """B's stream ticket with A's team (and every other id A has) in the query: B's board only."""
    tenant_b = f"tb-{uuid.uuid4().hex[:8]}"
    token = sec_stack.token(tenant_b, "bob", "employee", team=world.team)
    async with sec_stack.client(op.svc, token) as c:
        r = await c.post("/v1/leaderboard/stream-tickets")
        assert r.status_code == 201, r.text
        values = {**world.ids, "ticket": r.json()["ticket"]}
        path, query, _, _ = build_request(op, values)
        query["ticket"] = values["ticket"]
        first = b""
        async with c.stream("GET", path, params=query, timeout=10) as resp:
            assert resp.status_code == 200, await resp.aread()
            async for chunk in resp.aiter_bytes():
                first += chunk
                if b"data:" in first and first.endswith(b"\n\n"):
                    break
    text = first.decode()
    assert "data:" in text
    leaked = {m for m in world.markers - {world.team} if m in text}
    assert not leaked, (leaked, text[:500])
