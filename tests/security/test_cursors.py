"""Crafted cursors on every paged route of every published OpenAPI document: a 422 on ``cursor``
(or the route's own 403/404 first), never a 500 (issue 13: ``["x"]`` and integers past int64 were
500s). The routes come from the documents, so a new paged route is covered without a new line here."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.security.conftest import World
from tests.security.openapi_kit import all_operations
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e


def _craft(values: list[object]) -> str:
    """A cursor as a client could forge it (stdlib json: integers of any size)."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


CRAFTED = [
    _craft(["x"]),
    _craft([2**70]),
    _craft([-(2**70), "x"]),
    _craft([2**63, 2**63]),
    _craft([1.5]),
    _craft([None, None]),
    _craft([{"a": 1}, [1]]),
    _craft([True, False]),
    _craft(["2024-01-01T00:00:00", "x"]),  # an instant without its offset
    _craft(["2024-01-01T00:00:00+00:00", "\u0000"]),
    _craft(["2024-01-01T00:00:00+00:00", "k" * 400]),
    _craft(["day", "2024-01-01", "2024-01-31", "\u0000"]),
    _craft(list(range(40))),
    _craft([]),
    "e30",  # {}
    "!!!not-base64!!!",
]
PAGED = [op for op in all_operations() if op.method == "get" and any(p["name"] == "cursor" for p in op.params("query"))]


def _path(template: str, world: World) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(world.ids.get(m.group(1), "x")), template)


def test_the_documents_have_paged_routes_in_every_service() -> None:
    assert {op.svc for op in PAGED} == {"content", "sharing", "metrics", "gamification", "notifications"}


@pytest.mark.parametrize("op", PAGED, ids=lambda op: op.id)
async def test_a_crafted_cursor_is_a_422_never_a_500(sec_stack: PrivateStack, world: World, op: object) -> None:
    from tests.security.openapi_kit import Operation

    assert isinstance(op, Operation)
    token = sec_stack.token(world.tenant, world.admin, ["admin", "employee"], team=world.team)
    answers: dict[int, int] = {}
    async with sec_stack.client(op.svc, token) as c:
        for cursor in CRAFTED:
            r = await c.get(_path(op.path, world), params={"cursor": cursor})
            assert r.status_code < 500, (op.id, cursor, r.status_code, r.text[:300])
            answers[r.status_code] = answers.get(r.status_code, 0) + 1
            if r.status_code == 422:
                assert "cursor" in r.text, (op.id, cursor, r.text[:300])
    # a forged cursor that is well formed for the route (a string where it keeps a string: ["x"] for a
    # list paged by id) is just a position to start after: a 200, like any other; the rest are refused
    assert set(answers) <= {200, 422, 403, 404}, (op.id, answers)
    assert answers.get(200, 0) <= 1 and answers.get(422, 0) + answers.get(403, 0) + answers.get(404, 0) >= 14, (
        op.id,
        answers,
    )
