"""A partner token reaches only what docs/partners.md lists (reporting conversions), and so never
reads a name or a team: every other operation of every published OpenAPI document answers 403
(issue 13: a partner token read GET /v1/leaderboard with every employee's name)."""

from __future__ import annotations

import pytest

from tests.security.conftest import World
from tests.security.isolation_kit import call
from tests.security.openapi_kit import Operation, all_operations
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

# What a partner may call over HTTP (docs/partners.md): report a conversion with its token.
PARTNER_MAY = {"sharing:POST /v1/conversions"}
OPS = [op for op in all_operations() if not op.streams]


def test_the_allow_list_names_real_operations() -> None:
    assert {op.id for op in OPS} >= PARTNER_MAY


@pytest.mark.parametrize("op", [op for op in OPS if op.id not in PARTNER_MAY], ids=lambda op: op.id)
async def test_a_partner_token_is_refused_everything_else(sec_stack: PrivateStack, world: World, op: Operation) -> None:
    token = sec_stack.token(world.tenant, "acme-crm", "partner")
    async with sec_stack.client(op.svc, token) as c:
        r = await call(c, op, world.ids)
    assert r.status_code == 403, (op.id, r.status_code, r.text[:300])
    assert world.employee not in r.text and world.team not in r.text
