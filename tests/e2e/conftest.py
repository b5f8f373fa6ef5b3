"""E2E: the four services as separate processes on free ports, driven through HTTP only.

``stack`` (session): databases created and migrated on ``pg``, topics on ``broker``, every service
started with role ``all``, ``DEV_MODE=true``, ``LOG_JSON=true`` (trusted proxies: loopback, the dev
default) and ready. It offers:

- ``stack.url("sharing")`` -> ``"http://127.0.0.1:<port>"``
- ``stack.process("metrics")`` -> the ``ServiceProcess`` (``kill()``, ``terminate()``,
  ``restart()``, ``start()``, ``wait_ready()``, ``log_tail()``)
- ``stack.token(tenant, sub, role="employee", team=None, name=None)`` -> a JWT (``role`` may be a list)
- ``stack.entra_token(oid, roles=("Advocacy.Employee",), name=None)`` -> a Microsoft Entra ID style
  token (tests/fixtures/idp_tokens/entra.json, signed by a test key): every service also trusts that
  issuer (``AUTH_ISSUERS``, the ``entra`` preset), and its directory maps to tenant ``ENTRA_TENANT``
- ``stack.client(svc, token=None)`` -> an ``httpx.AsyncClient`` on that service (close it yourself
  or use ``async with``)
- ``stack.set_clock(at)`` / ``stack.reset_clock()``: "now" for content (its publication times, its
  scheduler) and the notifications worker (its schedulers and sender), read from one clock file
  (``<SVC>_CLOCK_FILE``, advocacy_common.testclock): a test sets 9 o'clock instead of waiting for
  it, and puts the real time back when done (the file removed)
- ``stack.mail``: what the notifications service sent, kept by a real SMTP server on a free port
  (:class:`tests.support.smtp.Inbox`; never the dev stack's 8025)
- ``stack.broker`` and ``stack.pg`` for fault injection; ``stack.ensure_running()`` brings back any
  service a test killed (it runs before every e2e test).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from advocacy_common.testclock import set_clock
from advocacy_dev.devstack.net import free_port
from tests.support.helpers import token_for
from tests.support.idp import TestIssuer, fixture
from tests.support.smtp import Inbox, smtp_server

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys
    from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres
    from advocacy_dev.devstack.processes import ServiceProcess
    from advocacy_dev.devstack.stack import ProcessStack

READY_TIMEOUT = float(os.environ.get("E2E_READY_TIMEOUT", "60"))
#: The tenant the Entra-style test issuer's directory (its ``tid``) maps to (issue 17): new in every
#: session, as the stack's databases may outlive one.
ENTRA_TENANT = f"entra-{uuid.uuid4().hex[:10]}"
#: The stack's clock file (content and notifications), in its data directory.
CLOCK_FILE = "notifications-clock"


class E2EStack:
    def __init__(
        self,
        inner: ProcessStack,
        *,
        keys: DevKeys,
        pg: EmbeddedPostgres | ExternalPostgres,
        broker: TansuBroker | ExternalBroker,
        entra: TestIssuer,
        mail: Inbox,
    ) -> None:
        self.inner = inner
        self.keys = keys
        self.mail = mail
        self.pg = pg
        self.broker = broker
        self.entra = entra

    @property
    def services(self) -> list[str]:
        return list(self.inner.processes)

    @property
    def logs_dir(self) -> Path:
        return self.inner.data.logs

    @property
    def clock_file(self) -> Path:
        return self.inner.data.root / CLOCK_FILE

    def set_clock(self, at: datetime) -> None:
        set_clock(self.clock_file, at)

    def reset_clock(self) -> None:
        self.clock_file.unlink(missing_ok=True)

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

    def entra_token(self, oid: str, roles: Sequence[str] = ("Advocacy.Employee",), name: str | None = None) -> str:
        """An Entra-style token for the person ``oid`` of tenant ``ENTRA_TENANT`` (no team claim)."""
        header, claims = fixture("entra")
        claims.update(oid=oid, roles=list(roles), name=name or oid)
        return self.entra.sign(header, claims)

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


def notifications_env(data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    """The notifications worker: its clock from a file the tests write (unset: the real time), its
    schedulers and sender looking every second (not every minute), share buttons to this sharing,
    team channels on loopback allowed."""
    return {
        "NOTIFICATIONS_CLOCK_FILE": str(data_dir / CLOCK_FILE),
        "NOTIFICATIONS_DIGEST_INTERVAL_SECONDS": "1",
        "NOTIFICATIONS_SEND_INTERVAL_SECONDS": "1",
        "NOTIFICATIONS_SHARE_BASE_URL": f"http://127.0.0.1:{ports['sharing']}",
        # the badge e2e test's Slack and Teams receiver listens on loopback (production refuses it)
        "NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE": "true",
    }


@pytest.fixture(scope="session")
def stack_mail() -> Iterator[Inbox]:
    """The stack's SMTP relay: a real server on a free port. Never the dev default (8025): a
    developer's `make run` may be listening there, and would receive the tests' mail."""
    with smtp_server(free_port()) as inbox:
        yield inbox


@pytest.fixture(scope="session")
def stack(
    pg: EmbeddedPostgres | ExternalPostgres,
    broker: TansuBroker | ExternalBroker,
    dev_keys: DevKeys,
    tmp_path_factory: pytest.TempPathFactory,
    stack_mail: Inbox,
) -> Iterator[E2EStack]:
    from advocacy_dev.devstack.stack import SERVICES, ProcessStack

    data_dir = tmp_path_factory.mktemp("stack")
    ports = {svc: free_port() for svc in SERVICES}
    entra = TestIssuer(kid="entra-e2e-key")
    _, claims = fixture("entra")
    issuers = json.dumps(
        [
            {
                "preset": "entra",
                "issuer": claims["iss"],
                "audience": claims["aud"],
                "jwks_path": entra.write_jwks(data_dir / "entra-jwks.json"),
                "tenant_map": {claims["tid"]: ENTRA_TENANT},
            }
        ]
    )
    inner = ProcessStack(
        server_url=pg.server_url,
        bootstrap=broker.bootstrap,
        jwks_path=dev_keys.jwks_path,
        data_dir=data_dir,
        ports=ports,
        log_json=True,
        role="all",
        # every service trusts the Entra-style test issuer beside the dev one (issue 17); the
        # partner-webhook e2e test receives on loopback, which production refuses (SSRF guard)
        extra_env={
            svc: {f"{svc.upper()}_AUTH_ISSUERS": issuers}
            | ({"CONTENT_WEBHOOK_ALLOW_PRIVATE": "true"} if svc == "content" else {})
            | ({"NOTIFICATIONS_SMTP_PORT": str(stack_mail.port)} if svc == "notifications" else {})
            | (notifications_env(data_dir, ports) if svc == "notifications" else {})
            | ({"CONTENT_CLOCK_FILE": str(data_dir / CLOCK_FILE)} if svc == "content" else {})
            for svc in SERVICES
        },
    )
    try:
        inner.prepare()
        inner.start(timeout=READY_TIMEOUT)
        yield E2EStack(inner, keys=dev_keys, pg=pg, broker=broker, entra=entra, mail=stack_mail)
    finally:
        inner.stop()


@pytest.fixture(autouse=True)
def _services_up(request: pytest.FixtureRequest) -> None:
    """Before each e2e test that uses the stack: every service running and ready."""
    if "stack" in request.fixturenames:
        s: E2EStack = request.getfixturevalue("stack")
        s.ensure_running()
