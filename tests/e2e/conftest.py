"""E2E: the four services as separate processes on free ports, driven through HTTP only.

``stack`` (session): databases created and migrated on ``pg``, topics on ``broker``, every service
started with role ``all``, ``DEV_MODE=true``, ``LOG_JSON=true`` (trusted proxies: loopback, the dev
default) and ready. It offers:

- ``stack.url("sharing")`` -> ``"http://127.0.0.1:<port>"``
- ``stack.process("metrics")`` -> the ``ServiceProcess`` (``kill()``, ``terminate()``,
  ``restart()``, ``start()``, ``wait_ready()``, ``log_tail()``)
- ``stack.token(tenant, sub, role="employee", team=None, name=None)`` -> a JWT (``role`` may be a list)
- ``stack.client(svc, token=None)`` -> an ``httpx.AsyncClient`` on that service (close it yourself
  or use ``async with``)
- ``stack.broker`` and ``stack.pg`` for fault injection; ``stack.ensure_running()`` brings back any
  service a test killed (it runs before every e2e test).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from advocacy_dev.devstack.net import free_port
from tests.support.helpers import token_for

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys
    from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres
    from advocacy_dev.devstack.processes import ServiceProcess
    from advocacy_dev.devstack.stack import ProcessStack

READY_TIMEOUT = float(os.environ.get("E2E_READY_TIMEOUT", "60"))


class E2EStack:
    def __init__(
        self,
        inner: ProcessStack,
        *,
        keys: DevKeys,
        pg: EmbeddedPostgres | ExternalPostgres,
        broker: TansuBroker | ExternalBroker,
    ) -> None:
        self.inner = inner
        self.keys = keys
        self.pg = pg
        self.broker = broker

    @property
    def services(self) -> list[str]:
        return list(self.inner.processes)

    @property
    def logs_dir(self) -> Path:
        return self.inner.data.logs

    def url(self, svc: str) -> str:
        return self.inner.url(svc)

    def process(self, svc: str) -> ServiceProcess:
        return self.inner.process(svc)

    def token(
        self,
        tenant: str,
        sub: str,
        role: str | list[str] = "employee",
        team: str | None = None,
        name: str | None = None,
        ttl_seconds: int = 3600,
    ) -> str:
        return token_for(self.keys, tenant, sub, role, team, name, ttl_seconds=ttl_seconds)

    def client(self, svc: str, token: str | None = None) -> httpx.AsyncClient:
        """Redirects are not followed (``GET /r/{code}`` answers 302)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url(svc), headers=headers, timeout=10.0)

    def ensure_running(self, timeout: float = READY_TIMEOUT) -> None:
        """Restart any service a previous test killed or stopped, and wait until all are ready."""
        for proc in self.inner.processes.values():
            if not proc.is_running():
                proc.start()
        for proc in self.inner.processes.values():
            proc.wait_ready(timeout)


@pytest.fixture(scope="session")
def stack(
    pg: EmbeddedPostgres | ExternalPostgres,
    broker: TansuBroker | ExternalBroker,
    dev_keys: DevKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[E2EStack]:
    from advocacy_dev.devstack.stack import SERVICES, ProcessStack

    data_dir = tmp_path_factory.mktemp("stack")
    inner = ProcessStack(
        server_url=pg.server_url,
        bootstrap=broker.bootstrap,
        jwks_path=dev_keys.jwks_path,
        data_dir=data_dir,
        ports={svc: free_port() for svc in SERVICES},
        log_json=True,
        role="all",
        # the partner-webhook e2e test receives on loopback, which production refuses (SSRF guard)
        extra_env={"content": {"CONTENT_WEBHOOK_ALLOW_PRIVATE": "true"}},
    )
    try:
        inner.prepare()
        inner.start(timeout=READY_TIMEOUT)
        yield E2EStack(inner, keys=dev_keys, pg=pg, broker=broker)
    finally:
        inner.stop()


@pytest.fixture(autouse=True)
def _services_up(request: pytest.FixtureRequest) -> None:
    """Before each e2e test that uses the stack: every service running and ready."""
    if "stack" in request.fixturenames:
        s: E2EStack = request.getfixturevalue("stack")
        s.ensure_running()
