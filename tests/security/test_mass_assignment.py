"""Mass assignment: ``tenant_id``, ``points``, ``roles``, ``status``, ``employee_id`` (and ``id``)
smuggled into any request body of any service (generated from the OpenAPI documents) are refused
with a 422 naming the field, or ignored, never applied. A field that the body legitimately has
(``employee_id`` of a reversal, ``points`` of the rules) is not smuggling and is skipped."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.security.conftest import World
from tests.security.isolation_kit import build_request
from tests.security.openapi_kit import Operation, all_operations, document, properties
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

SMUGGLED = {
    "tenant_id": "smuggled-tenant",
    "points": 987654,
    "roles": ["admin", "smuggled-role"],
    "status": "smuggled-status",
    "employee_id": "smuggled-employee",
    "id": "smuggled-id",
}
BODY_OPS = [op for op in all_operations() if op.body_schema is not None]


def test_there_are_bodies_to_smuggle_into() -> None:
    assert len(BODY_OPS) >= 15, [op.id for op in BODY_OPS]


def _fields(response: httpx.Response) -> set[str]:
    try:
        details = response.json()["error"]["details"]
    except (ValueError, KeyError, TypeError):
        return set()
    return {str(d.get("field", "")) for d in details}


@pytest.mark.parametrize("op", BODY_OPS, ids=[op.id for op in BODY_OPS])
async def test_smuggled_fields_are_refused_or_ignored(op: Operation, sec_stack: PrivateStack, world: World) -> None:
    legit = set(properties(op.body_schema or {}, document(op.svc)))
    path, query, headers, body = build_request(op, world.ids)
    assert isinstance(body, dict), (op.id, body)
    tried = 0
    for role in ("admin", "employee"):
        token = sec_stack.token(world.tenant, world.admin if role == "admin" else world.employee, role, team=world.team)
        async with sec_stack.client(op.svc, token) as c:
            for name, value in SMUGGLED.items():
                if name in legit:
                    continue
                tried += 1
                r = await c.request(op.method.upper(), path, params=query, headers=headers, json={**body, name: value})
                assert r.status_code < 500, (op.id, name, r.status_code, r.text)
                if r.status_code == 422:
                    assert name in _fields(r) or any(f.endswith(name) for f in _fields(r)), (op.id, name, r.text)
                else:
                    text = json.dumps(value) if not isinstance(value, str) else value
                    assert text not in r.text, (op.id, name, "applied", r.status_code, r.text[:300])
    assert tried or legit >= set(SMUGGLED), op.id


async def test_conversion_body_refuses_tenant_and_employee(sec_stack: PrivateStack, world: World) -> None:
    """``POST /v1/conversions`` reads its body itself (signed requests): same rule."""
    admin = sec_stack.token(world.tenant, world.admin, "admin")
    async with sec_stack.client("sharing", admin) as c:  # a partner token speaks for a registered partner
        r = await c.post("/v1/partners", json={"id": "partner-1", "name": "Partner 1"})
        assert r.status_code in (201, 409), r.text
    token = sec_stack.token(world.tenant, "partner-1", "partner")
    async with sec_stack.client("sharing", token) as c:
        for name, value in SMUGGLED.items():
            body = {"click_id": world.click_ids[0], "kind": "signup", "external_id": f"x-{uuid.uuid4().hex}"}
            r = await c.post("/v1/conversions", json={**body, name: value})
            assert r.status_code == 422, (name, r.status_code, r.text)
            assert name in _fields(r), (name, r.text)
