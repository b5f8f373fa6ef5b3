"""Issue 14 acceptance: the whole click flow (share -> click -> metrics and points exact) with every
Kafka client of every service over TLS.

The four services run as processes with ``KAFKA_SECURITY_PROTOCOL=SSL`` and the test CA, against the
embedded broker behind a TLS-terminating proxy that the broker advertises (tests/support/tlsproxy.py):
the services can reach it only through TLS. The producers, the consumer groups, the admin clients that
create topics (here and in the services) and the idempotence probe all go through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from advocacy_dev.devstack.stack import SERVICES
from tests.e2e.conftest import E2EStack
from tests.e2e.test_walking_skeleton import click_plan, expected, numbers, publish_and_share, summary
from tests.support.helpers import eventually, send_clicks
from tests.support.stackkit import PrivateStack, running_stack
from tests.support.tlsproxy import TlsTansu


@pytest.fixture
def tls_stack(pg: Any, dev_keys: Any, tmp_path: Path) -> Iterator[tuple[PrivateStack, TlsTansu]]:
    with (
        TlsTansu(tmp_path) as broker,
        running_stack(
            server_url=pg.server_url,
            bootstrap=broker.proxy.address,
            kafka=broker.conn,
            keys=dev_keys,
            data_dir=tmp_path / "stack",
            services=tuple(SERVICES),
            extra_env={svc: broker.env for svc in SERVICES},
        ) as stack,
    ):
        yield stack, broker


async def test_click_flow_with_every_kafka_client_over_tls(
    tls_stack: tuple[PrivateStack, TlsTansu], new_tenant: str
) -> None:
    stack, broker = tls_stack
    for svc in SERVICES:
        env = stack.inner.envs[svc]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SSL" and env["KAFKA_BOOTSTRAP_SERVERS"] == broker.proxy.address
    e2e = cast(E2EStack, stack)  # the same surface: token, client, url
    _, codes = await publish_and_share(e2e, new_tenant)
    statuses = await send_clicks(stack.url("sharing"), click_plan(codes, 40, 10))
    assert statuses.count(302) == 50
    want = expected(40, 10)

    async def settled() -> bool:
        return summary(await numbers(e2e, new_tenant)) == want

    await eventually(settled, timeout=60, interval=0.25, what="metrics and points exact over TLS")
    # every service process held TLS connections through the proxy (producers, groups, admin)
    assert broker.proxy.connections >= 4 * len(SERVICES)
