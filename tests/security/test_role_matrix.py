"""Authorization inside a tenant: every route of every published OpenAPI document x every role, one
table of expected answers, checked against the running services (issue 13, item 2).

Rows are keyed by service, method and path (``content:GET /v1/content``), so a renamed operation id
changes nothing and a new route, or a new service, fails :func:`test_every_route_has_a_row` until
someone writes down who may call it. Columns, in :data:`ROLES` order:

- ``admin``: the tenant's administrator;
- ``employee``: the owner of the resources the route is called with (alice: her suggestion, her
  coaching thread, her shares, her redemption);
- ``other``: another employee of the same tenant and team, owner of none of them;
- ``coach``: a coach of the tenant (coaching threads are private to the requester, the tenant's
  coaches and admins);
- ``partner``: a partner token of the tenant: it reaches only what docs/partners.md lists (reporting a
  conversion), never a name or a team;
- ``norole``: a valid token of the tenant whose ``roles`` claim is empty (an identity provider that
  grants only its own roles, ``offline_access``..., gives this): a route that only asks "is there a
  caller?" shows here;
- ``none``: no ``Authorization`` header.

There is no *deactivated employee* column: a person is switched off at the identity provider (no new
tokens; the current one lasts until its ``exp``), deactivated in the directory (SCIM ``active: false``:
tests/integration/test_scim_directory.py and the directory e2e test what they are refused) or erased
(``DELETE /v1/members/{employee_id}``; erasure's effects are issue 13 item 7's tests). There is no SCIM
secret column either: the SCIM routes take no token (``SCIM_SECRET``: every role is a 401).

Answer classes: ``ok`` (the handler acted or judged the request: any status below 500 other than
401, 403, 404), ``own`` (``ok``, and the body holds none of alice's private ids: the caller sees their
own things only), ``401``, ``403``, ``404`` (another's private resource: its existence is not
confirmed). A 5xx always fails.

Each route's roles are called in the order none, partner, other, coach, employee, admin, so a
destructive call (archive, delete, erase, close, cancel) that is allowed comes after the calls that
must be refused; destructive routes get resources of their own (``MatrixWorld.values``). Routes run
concurrently, every DELETE after all the others.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.security.conftest import World, build_world
from tests.security.isolation_kit import build_request
from tests.security.openapi_kit import Operation, all_operations
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

ROLES = ("admin", "employee", "other", "coach", "partner", "norole", "none")
CALL_ORDER = ("none", "norole", "partner", "other", "coach", "employee", "admin")
CLASSES = {"ok", "own", "401", "403", "404"}

ADMIN_ONLY = "ok  403 403 403 403 403 401"
STAFF = "ok  ok  ok  ok  403 403 401"
STAFF_OWN = "ok  ok  own own 403 403 401"  # each sees their own (alice: hers); the admin sees the tenant's
SELF_OR_ADMIN = "ok  ok  403 403 403 403 401"  # about alice: the admin and alice only (her data export)
# The SCIM service provider (/scim/v2, issue 17) authenticates by the tenant's SCIM bearer secret, never
# a token: every token, whatever its roles, is a 401 there (the SCIM error shape). The secret's own
# answers (right, wrong, another tenant's) are tests/integration/test_scim_bad_input.py.
SCIM_SECRET = "401 401 401 401 401 401 401"

MATRIX: dict[str, str] = {
    # -- content -------------------------------------------------------------------------------------
    "content:GET /v1/content": "ok ok own own 403 403 401",  # the board: alice's pending suggestion on no one else's
    "content:POST /v1/content": ADMIN_ONLY,
    "content:GET /v1/content/suggestions": STAFF_OWN,
    "content:POST /v1/content/suggestions": STAFF,
    "content:GET /v1/content/{content_id}": "ok ok 404 404 403 403 401",  # alice's pending suggestion
    "content:PATCH /v1/content/{content_id}": ADMIN_ONLY,
    "content:POST /v1/content/{content_id}/archive": ADMIN_ONLY,
    "content:POST /v1/content/{content_id}/approve": ADMIN_ONLY,
    "content:POST /v1/content/{content_id}/reject": ADMIN_ONLY,
    "content:GET /v1/policy": STAFF,
    "content:PUT /v1/policy": ADMIN_ONLY,
    "content:GET /v1/policy/versions": ADMIN_ONLY,
    "content:POST /v1/policy/check": STAFF,
    "content:GET /v1/me/topics": STAFF,
    "content:PUT /v1/me/topics": STAFF,
    "content:GET /v1/me/membership": STAFF,
    "content:PUT /v1/me/membership": STAFF,
    "content:DELETE /v1/members/{employee_id}": ADMIN_ONLY,
    "content:GET /v1/data-export/content/{employee_id}": SELF_OR_ADMIN,
    "content:GET /v1/waves": ADMIN_ONLY,
    "content:POST /v1/waves": ADMIN_ONLY,
    "content:GET /v1/waves/{wave_id}": ADMIN_ONLY,
    "content:PATCH /v1/waves/{wave_id}": ADMIN_ONLY,
    "content:DELETE /v1/waves/{wave_id}": ADMIN_ONLY,
    # coaching: the requester, the tenant's coaches and admins read a thread; others get a 404
    "content:GET /v1/coaching/requests": "ok ok own ok 403 403 401",
    "content:POST /v1/coaching/requests": STAFF,
    "content:GET /v1/coaching/requests/{request_id}": "ok ok 404 ok 403 403 401",
    "content:POST /v1/coaching/requests/{request_id}/replies": "403 ok 404 ok 403 403 401",  # requester and coaches reply
    "content:POST /v1/coaching/requests/{request_id}/close": "403 ok 404 403 403 403 401",  # the requester closes
    "content:GET /v1/tenant/settings": ADMIN_ONLY,
    "content:PUT /v1/tenant/settings": ADMIN_ONLY,
    "content:POST /v1/partner/webhook-secret/rotate": ADMIN_ONLY,
    "content:GET /v1/audit/content": ADMIN_ONLY,
    "content:GET /v1/partner/webhook-deliveries": ADMIN_ONLY,
    "content:GET /v1/partner/webhook-deliveries/{delivery_id}": ADMIN_ONLY,
    "content:POST /v1/partner/webhook-deliveries/{delivery_id}/redeliver": ADMIN_ONLY,
    "content:POST /v1/partner/webhook-endpoints": ADMIN_ONLY,
    "content:GET /v1/partner/webhook-endpoints": ADMIN_ONLY,
    "content:GET /v1/partner/webhook-endpoints/{endpoint_id}": ADMIN_ONLY,
    "content:PATCH /v1/partner/webhook-endpoints/{endpoint_id}": ADMIN_ONLY,
    "content:POST /v1/partner/webhook-endpoints/{endpoint_id}/secret/rotate": ADMIN_ONLY,
    "content:POST /v1/partner/webhook-endpoints/{endpoint_id}/replay": ADMIN_ONLY,
    "content:POST /v1/scim/secret/rotate": ADMIN_ONLY,
    "content:GET /scim/v2/ServiceProviderConfig": SCIM_SECRET,
    "content:GET /scim/v2/Schemas": SCIM_SECRET,
    "content:GET /scim/v2/Schemas/{schema_id}": SCIM_SECRET,
    "content:GET /scim/v2/ResourceTypes": SCIM_SECRET,
    "content:GET /scim/v2/ResourceTypes/{name}": SCIM_SECRET,
    "content:GET /scim/v2/Users": SCIM_SECRET,
    "content:POST /scim/v2/Users": SCIM_SECRET,
    "content:GET /scim/v2/Users/{user_id}": SCIM_SECRET,
    "content:PUT /scim/v2/Users/{user_id}": SCIM_SECRET,
    "content:PATCH /scim/v2/Users/{user_id}": SCIM_SECRET,
    "content:DELETE /scim/v2/Users/{user_id}": SCIM_SECRET,
    "content:GET /scim/v2/Groups": SCIM_SECRET,
    "content:POST /scim/v2/Groups": SCIM_SECRET,
    "content:GET /scim/v2/Groups/{group_id}": SCIM_SECRET,
    "content:PUT /scim/v2/Groups/{group_id}": SCIM_SECRET,
    "content:PATCH /scim/v2/Groups/{group_id}": SCIM_SECRET,
    "content:DELETE /scim/v2/Groups/{group_id}": SCIM_SECRET,
    # -- sharing -------------------------------------------------------------------------------------
    "sharing:GET /v1/shares": STAFF_OWN,
    "sharing:GET /v1/data-export/sharing/{employee_id}": SELF_OR_ADMIN,
    "sharing:POST /v1/shares": STAFF,
    "sharing:POST /v1/shares/tickets": STAFF,  # a browser's single-use ticket to share itself (console)
    "sharing:PUT /v1/accounts/{network}": STAFF,
    "sharing:GET /v1/accounts": "own ok own own 403 403 401",  # everyone, the admin too, sees their own accounts
    "sharing:POST /v1/clicks/invalidate": ADMIN_ONLY,
    "sharing:GET /v1/links/{code}/verdicts": ADMIN_ONLY,
    "sharing:POST /v1/conversions": "ok 403 403 403 ok 403 401",  # docs/partners.md: a partner token reports conversions
    "sharing:POST /v1/conversion-secrets/rotate": ADMIN_ONLY,
    "sharing:GET /v1/links/refused": ADMIN_ONLY,
    "sharing:POST /v1/partners": ADMIN_ONLY,
    "sharing:GET /v1/partners": ADMIN_ONLY,
    "sharing:POST /v1/partners/{partner_id}/secrets/rotate": ADMIN_ONLY,
    "sharing:POST /v1/partners/{partner_id}/revoke": ADMIN_ONLY,
    "sharing:GET /v1/audit/sharing": ADMIN_ONLY,
    # -- metrics -------------------------------------------------------------------------------------
    "metrics:GET /v1/metrics/employees/{employee_id}": "ok ok 403 403 403 403 401",  # alice's own figures
    "metrics:GET /v1/data-export/metrics/{employee_id}": SELF_OR_ADMIN,
    "metrics:GET /v1/metrics/content/{content_id}": STAFF,
    "metrics:GET /v1/metrics/summary": ADMIN_ONLY,
    "metrics:GET /v1/metrics/adoption": ADMIN_ONLY,
    "metrics:GET /v1/metrics/roi": ADMIN_ONLY,
    "metrics:GET /v1/metrics/export.csv": ADMIN_ONLY,
    # -- gamification --------------------------------------------------------------------------------
    "gamification:GET /v1/data-export/gamification/{employee_id}": SELF_OR_ADMIN,
    "gamification:GET /v1/leaderboard": STAFF,
    "gamification:GET /v1/leaderboard/me": STAFF,
    "gamification:GET /v1/leaderboard/teams": STAFF,
    "gamification:POST /v1/leaderboard/stream-tickets": STAFF,
    # opened with a ticket from POST /v1/leaderboard/stream-tickets; without one (partner, none) a 401
    "gamification:GET /v1/leaderboard/stream": "ok ok ok ok 401 401 401",
    "gamification:GET /v1/rules": STAFF,
    "gamification:PUT /v1/rules": ADMIN_ONLY,
    "gamification:POST /v1/rules/simulate": ADMIN_ONLY,
    "gamification:GET /v1/points/me": STAFF,
    "gamification:POST /v1/points/reversals": ADMIN_ONLY,
    "gamification:GET /v1/rewards": STAFF,
    "gamification:POST /v1/rewards": ADMIN_ONLY,
    "gamification:GET /v1/rewards/{reward_id}": STAFF,
    "gamification:POST /v1/rewards/{reward_id}/redeem": STAFF,
    "gamification:GET /v1/redemptions": STAFF_OWN,
    "gamification:POST /v1/redemptions/{redemption_id}/fulfil": ADMIN_ONLY,
    "gamification:POST /v1/redemptions/{redemption_id}/cancel": ADMIN_ONLY,
    "gamification:GET /v1/badges": STAFF,
    "gamification:GET /v1/badges/me": STAFF,
    "gamification:GET /v1/challenges": STAFF,
    "gamification:POST /v1/challenges": ADMIN_ONLY,
    "gamification:GET /v1/challenges/{challenge_id}": STAFF,
    "gamification:GET /v1/audit/gamification": ADMIN_ONLY,
    # -- notifications -------------------------------------------------------------------------------
    "notifications:GET /v1/data-export/notifications/{employee_id}": SELF_OR_ADMIN,
    "notifications:GET /v1/notifications/preferences": STAFF,
    "notifications:PUT /v1/notifications/preferences/{category}/{channel}": STAFF,
    "notifications:GET /v1/notifications/defaults": ADMIN_ONLY,
    "notifications:PUT /v1/notifications/defaults": ADMIN_ONLY,
    "notifications:GET /v1/notifications/quiet-hours": STAFF,
    "notifications:PUT /v1/notifications/quiet-hours": STAFF,
    "notifications:DELETE /v1/notifications/quiet-hours": STAFF,
    "notifications:GET /v1/notifications/defaults/categories": ADMIN_ONLY,
    "notifications:PUT /v1/notifications/defaults/categories/{category}/{channel}": ADMIN_ONLY,
    "notifications:GET /v1/notifications/defaults/report-recipients": ADMIN_ONLY,
    "notifications:PUT /v1/notifications/defaults/report-recipients": ADMIN_ONLY,
    "notifications:GET /v1/notifications/language": STAFF,
    "notifications:PUT /v1/notifications/language": STAFF,
    "notifications:GET /v1/notifications/defaults/language": ADMIN_ONLY,
    "notifications:PUT /v1/notifications/defaults/language": ADMIN_ONLY,
    "notifications:GET /v1/notifications/templates": ADMIN_ONLY,
    "notifications:GET /v1/notifications/templates/{name}/{language}": ADMIN_ONLY,
    "notifications:PUT /v1/notifications/templates/{name}/{language}": ADMIN_ONLY,
    "notifications:DELETE /v1/notifications/templates/{name}/{language}": ADMIN_ONLY,
    "notifications:GET /v1/notifications/channels": ADMIN_ONLY,
    "notifications:PUT /v1/notifications/channels/{channel}": ADMIN_ONLY,
    "notifications:DELETE /v1/notifications/channels/{channel}": ADMIN_ONLY,
    # (the unsubscribe links take no token: documented with security [], outside this matrix)
}

OPS = all_operations(secret_routes=True)


def expected(op_id: str) -> dict[str, str]:
    cells = MATRIX[op_id].split()
    assert len(cells) == len(ROLES) and set(cells) <= CLASSES, (op_id, cells)
    return dict(zip(ROLES, cells, strict=True))


def test_every_route_has_a_row() -> None:
    """A route added to any service's OpenAPI document fails here until its row is written."""
    missing = sorted(op.id for op in OPS if op.id not in MATRIX)
    assert not missing, f"no row in tests/security/test_role_matrix.py MATRIX for: {missing}"


def test_the_scim_secret_class_is_exactly_the_secret_routes() -> None:
    """A route a tenant secret authenticates (openapi_kit.SECRET_SCHEMES) refuses every token, and
    only such a route has that row; the secret's own answers are test_scim_directory.py's."""
    for op in OPS:
        assert (MATRIX.get(op.id) == SCIM_SECRET) == op.secret, op.id
    assert sum(op.secret for op in OPS) >= 17


def test_every_row_is_a_route_and_well_formed() -> None:
    stale = sorted(set(MATRIX) - {op.id for op in OPS})
    assert not stale, f"rows for routes no document publishes: {stale}"
    for op_id in MATRIX:
        expected(op_id)


@dataclass
class MatrixWorld:
    world: World
    tokens: dict[str, str | None]
    # per operation: parameter values other than the world's (destructive routes get their own)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    private: set[str] = field(default_factory=set)  # alice's ids no other employee may see


@pytest.fixture(scope="module")
async def mw(sec_stack: PrivateStack) -> MatrixWorld:
    s = sec_stack
    w = await build_world(s, counted=False)  # a tenant of its own: the calls below change it
    tag = uuid.uuid4().hex[:6]
    admin = s.token(w.tenant, w.admin, "admin", team=w.team, name="Boss")
    alice = s.token(w.tenant, w.employee, "employee", team=w.team, name="Alice")
    tokens: dict[str, str | None] = {
        "admin": admin,
        "employee": alice,
        "other": s.token(w.tenant, f"bob-{tag}", "employee", team=w.team, name="Bob"),
        "coach": s.token(w.tenant, f"carol-{tag}", "coach", team=w.team, name="Carol"),
        "partner": s.token(w.tenant, f"crm-{tag}", "partner"),
        "norole": s.token(w.tenant, f"dan-{tag}", [], team=w.team, name="Dan"),
        "none": None,
    }
    async with s.client("content", admin) as c:
        r = await c.post("/v1/content", json={"title": "to archive", "url": f"https://example.com/ar-{tag}"})
        assert r.status_code == 201, r.text
        archive_id = r.json()["id"]
    async with s.client("content", alice) as c:
        r = await c.post(
            "/v1/content/suggestions", json={"title": "second idea", "url": f"https://example.com/s2-{tag}"}
        )
        assert r.status_code == 201, r.text
        suggestion2 = r.json()["id"]
    async with s.client("sharing", admin) as c:  # the partner token's partner, and one to revoke
        for partner_id in (f"crm-{tag}", f"old-{tag}"):
            r = await c.post("/v1/partners", json={"id": partner_id, "name": partner_id})
            assert r.status_code == 201, r.text
    async with s.client("gamification", alice) as g:
        r = await g.get("/v1/points/me")
        assert r.status_code == 200, r.text
        award = next(i for i in r.json()["items"] if i["points"] > 0)
    mw = MatrixWorld(world=w, tokens=tokens)
    mw.values = {
        "content:GET /v1/content/{content_id}": {"content_id": w.ids["suggestion_id"]},
        "content:POST /v1/content/{content_id}/archive": {"content_id": archive_id},
        "content:POST /v1/content/{content_id}/approve": {"content_id": suggestion2},
        "content:POST /v1/content/{content_id}/reject": {"content_id": suggestion2},
        "content:DELETE /v1/members/{employee_id}": {"employee_id": f"gone-{tag}"},
        "sharing:GET /v1/links/{code}/verdicts": {"code": w.share_code},
        "sharing:POST /v1/partners/{partner_id}/secrets/rotate": {"partner_id": f"crm-{tag}"},
        "sharing:POST /v1/partners/{partner_id}/revoke": {"partner_id": f"old-{tag}"},
        "notifications:PUT /v1/notifications/defaults/categories/{category}/{channel}": {
            "category": "badges",
            "channel": "email",
        },
    }
    mw.bodies = {
        "content:PUT /v1/me/membership": {"enrolled": True},
        "sharing:POST /v1/conversions": {"click_id": w.click_ids[0], "external_id": f"ext-{tag}"},
        "sharing:POST /v1/partners": {"id": f"new-{tag}", "name": "New"},
        "gamification:POST /v1/points/reversals": {"employee_id": w.employee, "event_id": award["event_id"]},
        # a public address literal: the outbound guard accepts it without DNS (the DELETE then finds it)
        "notifications:PUT /v1/notifications/channels/{channel}": {"url": "https://93.184.215.14/hook"},
        "notifications:PUT /v1/notifications/quiet-hours": {"start_hour": 22, "end_hour": 7},
        "notifications:PUT /v1/notifications/defaults/categories/{category}/{channel}": {"frequency": "off"},
    }
    mw.private = {
        w.ids["suggestion_id"],
        suggestion2,
        w.ids["request_id"],
        w.ids["share_id"],
        w.share_code,
        w.ids["redemption_id"],
        *(m for m in w.markers if m.startswith("handle-")),
    }
    return mw


def _class(r: httpx.Response) -> str:
    if r.status_code in (401, 403, 404):
        return str(r.status_code)
    return "ok"


async def _call(s: PrivateStack, mw: MatrixWorld, op: Operation, role: str) -> httpx.Response:
    values = {**mw.world.ids, **mw.values.get(op.id, {})}
    if op.secret:  # every token is refused before an id is looked at
        values |= {p["name"]: "unknown" for p in op.params("path") if p["name"] not in values}
    path, query, headers, body = build_request(op, values)
    if isinstance(body, dict):
        body = {k: values.get(k, v) if isinstance(v, str) else v for k, v in body.items()}
        body |= mw.bodies.get(op.id, {})
    kwargs: dict[str, Any] = {"params": query, "headers": headers}
    if body is not None:
        kwargs["json"] = body
    async with s.client(op.svc, mw.tokens[role]) as c:
        if op.streams:
            return await _open_stream(c, path, role)
        return await c.request(op.method.upper(), path, **kwargs)


async def _open_stream(c: httpx.AsyncClient, path: str, role: str) -> httpx.Response:
    """The role's own ticket (when it may have one), else a forged one; the answer's head only."""
    ticket = "v1.e30.forged"
    if role != "none":
        r = await c.post("/v1/leaderboard/stream-tickets")
        if r.status_code == 201:
            ticket = r.json()["ticket"]
    async with c.stream("GET", path, params={"ticket": ticket}, timeout=10) as resp:
        return httpx.Response(resp.status_code, headers=resp.headers)


# Operations in flight at once (each calls its roles one after another, in CALL_ORDER).
CONCURRENCY = 6


@dataclass(frozen=True)
class Answer:
    status: int
    cls: str
    text: str


async def _answers_of(s: PrivateStack, mw: MatrixWorld, op: Operation) -> dict[str, Answer]:
    out = {}
    for role in CALL_ORDER:
        r = await _call(s, mw, op, role)
        got = _class(r)
        if got == "ok" and expected(op.id)[role] == "own":
            leaked = sorted(m for m in mw.private if m in r.text)
            got = "own" if not leaked else f"ok, with alice's {leaked}"
        out[role] = Answer(r.status_code, got, r.text)
    return out


@pytest.fixture(scope="module")
async def answers(sec_stack: PrivateStack, mw: MatrixWorld) -> dict[str, dict[str, Answer]]:
    """Every role's answer on every route with a row. Routes run concurrently, except that every
    DELETE runs after all the others (deleting the wave must not turn another route's call into a
    404)."""
    gate = asyncio.Semaphore(CONCURRENCY)
    out: dict[str, dict[str, Answer]] = {}

    async def one(op: Operation) -> None:
        async with gate:
            out[op.id] = await _answers_of(sec_stack, mw, op)

    rows = [op for op in OPS if op.id in MATRIX]
    await asyncio.gather(*(one(op) for op in rows if op.method != "delete"))
    await asyncio.gather(*(one(op) for op in rows if op.method == "delete"))
    return out


@pytest.mark.parametrize("op", OPS, ids=[op.id for op in OPS])
def test_each_role_gets_the_answer_the_table_says(
    op: Operation, mw: MatrixWorld, answers: dict[str, dict[str, Answer]]
) -> None:
    if op.id not in MATRIX:
        pytest.fail(f"{op.id}: no row in MATRIX (see test_every_route_has_a_row)")
    want, got = expected(op.id), answers[op.id]
    for role, a in got.items():
        assert a.status < 500, (op.id, role, a.status, a.text[:300])
    if "Alice" in got["partner"].text or mw.world.team in got["partner"].text:
        pytest.fail(
            f"{op.id}: a partner read a name or a team (docs/partners.md: ids only): {got['partner'].text[:300]}"
        )
    wrong = [
        f"{role}: expected {want[role]}, got {got[role].cls} ({got[role].status} {got[role].text[:160]})"
        for role in ROLES
        if got[role].cls != want[role]
    ]
    assert not wrong, f"{op.id}:\n  " + "\n  ".join(wrong)
