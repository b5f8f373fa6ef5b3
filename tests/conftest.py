"""Fixtures every tier may use. The infrastructure ones are lazy: a unit test that does not ask for
``pg`` or ``broker`` starts nothing.

- ``pg``: a PostgreSQL server for the session (embedded, in a temp dir, on a free port; or the
  server of ``TEST_DATABASE_URL``). ``pg.server_url``, ``pg.database_url(name)``,
  ``pg.create_database(name) -> url`` (idempotent).
- ``broker``: the session's Kafka broker (Tansu on a free port, or ``TEST_KAFKA_BOOTSTRAP_SERVERS``).
  ``broker.bootstrap``. Shared by every test: do not kill it here, use ``fresh_broker``.
- ``fresh_broker``: a Tansu of this test's own (kill/restart freely), stopped afterwards.
- ``dev_keys``: the session's dev signing key (``DevKeys``); ``mint`` makes tokens with it.
- ``free_port()``, ``unique_id(prefix)``, ``new_tenant``.

Every test is marked with its tier, the folder it lives in (``unit``, ``integration``, ``e2e``,
``reliability``, ``security``, ``deploy``); what tiers share lives in ``tests/support``.
"""

from __future__ import annotations

import atexit
import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from advocacy_dev.devstack.net import free_port as _free_port
from tests.support.processes import own_tansu, stop_at_exit
from tests.support.sslcontext import share_default_ssl_context

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys
    from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres

TESTS_DIR = Path(__file__).parent
_TIER_MARKS = {
    tier: getattr(pytest.mark, tier) for tier in ("unit", "integration", "e2e", "reliability", "security", "deploy")
}


def pytest_configure(config: pytest.Config) -> None:
    share_default_ssl_context()  # thousands of short-lived httpx clients: one CA bundle load, not one each


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            tier = item.path.relative_to(TESTS_DIR).parts[0]
        except ValueError:
            continue
        mark = _TIER_MARKS.get(tier)
        if mark is not None:
            item.add_marker(mark)


# -- helpers ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session", name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """``free_port()``: a TCP port on 127.0.0.1 that was free a moment ago."""
    return _free_port


def make_unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def unique_id() -> Callable[..., str]:
    """``unique_id(prefix="t")`` -> e.g. ``"t-3f9a1c2b7d"``: ids unique per test, no cleanup needed."""
    return make_unique_id


@pytest.fixture
def new_tenant() -> str:
    """A tenant id no other test uses: ``"t-<10 hex>"``."""
    return make_unique_id("t")


# -- PostgreSQL ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres | ExternalPostgres]:
    from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, ExternalPostgres

    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        external = ExternalPostgres(url)
        external.start()
        yield external
        return
    root = tmp_path_factory.mktemp("pg")
    server = EmbeddedPostgres(
        root / "data", _free_port(), log_path=root / "postgres.log", settings=FAST_UNSAFE_SETTINGS
    )
    stop = stop_at_exit(server.stop)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        atexit.unregister(stop)


# -- Kafka --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker | ExternalBroker]:
    from advocacy_dev.devstack.broker import ExternalBroker

    bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        external = ExternalBroker(bootstrap)
        external.start()
        yield external
        return
    with own_tansu(tmp_path_factory.mktemp("tansu")) as tansu:
        yield tansu


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    """A Tansu broker for this test alone: kill it, restart it (it comes back empty)."""
    with own_tansu(tmp_path) as tansu:
        yield tansu


# -- auth ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeys:
    from advocacy_common.auth.devkeys import ensure_dev_keys

    return ensure_dev_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def mint(dev_keys: DevKeys) -> Callable[..., str]:
    """``mint(tenant, sub, role="employee", team=None, name=None, **kw)`` -> a JWT the services trust.

    ``role`` may be a string or a list of roles; ``kw`` goes to ``mint_token`` (``ttl_seconds``...).
    """
    from tests.support.helpers import token_for

    return functools.partial(token_for, dev_keys)
