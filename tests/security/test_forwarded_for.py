"""Spoofed ``X-Forwarded-For``: from a peer that is not a trusted proxy the header is ignored, so
20 clicks with 20 made-up addresses are one visitor (1 counted, 19 duplicates). The control: the
same clicks through a trusted proxy (dev trusts loopback) are 20 visitors.

Note: ``TRUSTED_PROXIES='[]'`` does not make loopback untrusted in dev mode (an empty list means
"the dev default", loopback); the private stack therefore trusts only 203.0.113.0/24 (TEST-NET-3),
which the test client on 127.0.0.1 is not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_dev.devstack.broker import TansuBroker
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, visitor_ip
from tests.support.stackkit import PrivateStack, running_stack
from tests.support.traffic import make_shares

pytestmark = pytest.mark.e2e

# Twenty visitors, each in a /24 of its own, in a /8 no cloud announces (a cloud range is a
# ``datacenter_range`` bot, and three clicks from one /24 at once a scanner's burst).
SPOOFED = [visitor_ip(i) for i in range(1, 21)]


@pytest.fixture
def untrusting_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[PrivateStack]:
    proxies = json.dumps(["203.0.113.0/24"])
    with running_stack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "xff",
        services=["sharing", "metrics"],
        extra_env={"sharing": {"TRUSTED_PROXIES": proxies}, "metrics": {"TRUSTED_PROXIES": proxies}},
    ) as s:
        yield s


async def _spoofed_clicks(s: PrivateStack, code: str) -> None:
    async with httpx.AsyncClient(base_url=s.url("sharing"), timeout=10) as c:
        for ip in SPOOFED:
            r = await c.get(
                f"/r/{code}",
                headers={"X-Forwarded-For": ip, "User-Agent": BROWSER_UAS[0], "Accept-Language": ACCEPT_LANGUAGE},
            )
            assert r.status_code == 302, r.text


async def _verdicts(s: PrivateStack, tenant: str, emp: str, want_total: int) -> dict[str, int]:
    token = s.token(tenant, "admin", "admin")
    async with s.client("metrics", token) as c:

        async def settled() -> dict[str, int] | None:
            v = (await c.get(f"/v1/metrics/employees/{emp}")).json()["clicks_by_verdict"]
            return dict(v) if sum(v.values()) == want_total else None

        result: dict[str, int] = await eventually(settled, timeout=30, interval=0.3, what="verdicts")
        return result


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_one_visitor(untrusting_stack: PrivateStack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    truth = await make_shares(untrusting_stack, tenant, ["eve"])
    code = next(iter(truth.codes))
    await _spoofed_clicks(untrusting_stack, code)
    verdicts = await _verdicts(untrusting_stack, tenant, "eve", len(SPOOFED))
    assert verdicts["counted"] == 1, verdicts
    assert verdicts["duplicate"] == len(SPOOFED) - 1, verdicts
    assert truth.shares == {"eve": 1}


async def test_the_same_clicks_through_a_trusted_proxy_are_many_visitors(sec_stack: PrivateStack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    truth = await make_shares(sec_stack, tenant, ["eve"])
    code = next(iter(truth.codes))
    await _spoofed_clicks(sec_stack, code)
    verdicts = await _verdicts(sec_stack, tenant, "eve", len(SPOOFED))
    assert verdicts["counted"] == len(SPOOFED), verdicts
