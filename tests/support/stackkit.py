"""Private stacks for fault injection and attacks: the services as real processes, on their own
databases (fresh names on a given PostgreSQL server) and their own broker.

Never the session ``broker``: two stacks on one broker would share consumer groups (``metrics``,
``gamification``...) and steal each other's partitions.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.kafka_connection import KafkaConnection
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.processes import ServiceProcess
from advocacy_dev.devstack.stack import SERVICES, ProcessStack
from tests.support.helpers import token_for

SCALE = os.environ.get("RELIABILITY_SCALE", "short").strip().lower()
FULL = SCALE == "full"


def sized(short: Any, full: Any) -> Any:
    """The value for the current size: ``RELIABILITY_SCALE=full`` (``make reliability``) or short."""
    return full if FULL else short


@contextmanager
def running_stack(**kwargs: Any) -> Iterator[PrivateStack]:
    """A ``PrivateStack(**kwargs)`` prepared and started, stopped on exit."""
    s = PrivateStack(**kwargs)
    try:
        s.prepare_and_start()
        yield s
    finally:
        s.stop()


class PrivateStack:
    """A ``ProcessStack`` with the conveniences of the e2e ``stack`` (tokens, clients)."""

    def __init__(
        self,
        *,
        server_url: str,
        bootstrap: str,
        keys: DevKeys,
        data_dir: Path,
        services: Iterable[str] = tuple(SERVICES),
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        role: str = "all",
        partitions: int = 6,
        server_urls: Mapping[str, str] | None = None,
        kafka: KafkaConnection | None = None,
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.keys = keys
        self.bootstrap = bootstrap
        # how this side (topic creation) connects, when the broker wants TLS or SASL; the services
        # get the same through ``extra_env``
        self.kafka = kafka
        svcs = list(services)
        env = {svc: dict((extra_env or {}).get(svc, {})) for svc in svcs}
        # a service may live on a server of its own (to stop its database alone)
        self.server_urls = {svc: (server_urls or {}).get(svc, server_url) for svc in svcs}
        self.inner = ProcessStack(
            server_url=server_url,
            bootstrap=bootstrap,
            jwks_path=keys.jwks_path,
            data_dir=data_dir,
            ports={svc: free_port() for svc in svcs},
            database_names={svc: f"rel_{svc}_{tag}" for svc in svcs},
            extra_env=env,
            role=role,
            partitions=partitions,
        )
        if server_urls:
            from advocacy_dev.devstack.postgres import database_url_on

            for svc, url in server_urls.items():
                db_url = database_url_on(url, self.inner.database_names[svc])
                self.inner.envs[svc][f"{svc.upper()}_DATABASE_URL"] = db_url
                self.inner.processes[svc].env[f"{svc.upper()}_DATABASE_URL"] = db_url

    def prepare_and_start(self, timeout: float = 90.0) -> None:
        """Fresh databases (copies of the migrated templates: a suite starts many stacks), topics,
        then the services."""
        from advocacy_dev.devstack.stack import create_migrated_databases, ensure_all_topics

        self.inner.data.create()
        ensure_all_topics(self.kafka or self.bootstrap, self.inner.partitions)
        create_migrated_databases(self.inner.envs, self.inner.data.logs)
        self.inner.start(timeout=timeout)

    def stop(self) -> None:
        self.inner.stop()

    def url(self, svc: str) -> str:
        return self.inner.url(svc)

    def process(self, svc: str) -> ServiceProcess:
        return self.inner.process(svc)

    def database_url(self, svc: str) -> str:
        return self.inner.envs[svc][f"{svc.upper()}_DATABASE_URL"]

    def token(
        self,
        tenant: str,
        sub: str,
        role: str | list[str] = "employee",
        team: str | None = None,
        name: str | None = None,
        **kw: Any,
    ) -> str:
        return token_for(self.keys, tenant, sub, role, team, name, **kw)

    def client(self, svc: str, token: str | None = None, **kw: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url(svc), headers=headers, timeout=kw.pop("timeout", 15.0), **kw)

    def ensure_running(self, timeout: float = 60.0) -> None:
        for proc in self.inner.processes.values():
            if not proc.is_running():
                proc.start()
        for proc in self.inner.processes.values():
            proc.wait_ready(timeout)


def record(scenario: str, **figures: Any) -> None:
    """Append this run's figures to ``$RELIABILITY_RESULTS`` (default /tmp/reliability-results.jsonl)
    and print them (``pytest -s`` shows them); docs/reliability.md quotes them."""
    import json
    import time

    line = {"scenario": scenario, "scale": SCALE, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    path = Path(os.environ.get("RELIABILITY_RESULTS", "/tmp/reliability-results.jsonl"))
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(f"\n[reliability] {json.dumps(line)}")
