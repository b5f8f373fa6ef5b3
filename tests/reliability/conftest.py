"""Reliability fixtures. Every test here is marked ``reliability``; the size comes from
``RELIABILITY_SCALE`` (``short``, the default in ``make test``; ``full`` in ``make reliability``).

- ``rel_broker`` / ``rel_stack`` (session): sharing, metrics and gamification as real processes on
  fresh databases of the session PostgreSQL and a broker of their own, for the scenarios that kill
  processes or inject records but leave the broker and databases up (each test uses its own tenant).
- Scenarios that stop the broker or a database build their own stack (``fresh_broker``, their own
  ``EmbeddedPostgres``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from advocacy_dev.devstack.broker import TansuBroker
from tests.support.processes import own_tansu
from tests.support.stackkit import PrivateStack, running_stack

RELIABILITY_DIR = Path(__file__).parent
FLOW = ("sharing", "metrics", "gamification")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if RELIABILITY_DIR in item.path.parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def rel_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with own_tansu(tmp_path_factory.mktemp("rel-tansu")) as tansu:
        yield tansu


@pytest.fixture(scope="session")
def rel_stack(
    pg: Any, rel_broker: TansuBroker, dev_keys: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url,
        bootstrap=rel_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path_factory.mktemp("rel-stack"),
        services=FLOW,
        extra_env={"sharing": {"SHARING_BROKER_WATCH_SECONDS": "1"}},
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def _rel_services_up(request: pytest.FixtureRequest) -> None:
    if "rel_stack" in request.fixturenames:
        s: PrivateStack = request.getfixturevalue("rel_stack")
        s.ensure_running()
