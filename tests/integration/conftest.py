"""Integration fixtures: real PostgreSQL and the real broker (``pg`` and ``broker`` from the root
conftest), plus per-test databases and topics so tests never need cleanup.

- ``new_database``: creates a fresh, empty database on ``pg``; returns its SQLAlchemy asyncpg URL.
- ``new_topic``: ``await new_topic(partitions=1)`` -> the name of a fresh topic on ``broker``.
- ``private_broker``: a Tansu broker of the test module's own, so its consumer groups meet no other's.
- ``sharing``: the sharing service in this process on a fresh database and ``private_broker``, one
  per test module (``tests.support.sharing.Sharing``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys
    from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres
    from tests.support.sharing import Sharing


@pytest.fixture
def new_database(pg: EmbeddedPostgres | ExternalPostgres) -> str:
    """A fresh, empty database (``test_<hex>``): its ``postgresql+asyncpg://`` URL."""
    return pg.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def new_topic(broker: TansuBroker | ExternalBroker) -> Callable[..., Awaitable[str]]:
    """``await new_topic(partitions=1, prefix="test")``: create a uniquely named topic."""
    from advocacy_common.kafka import ensure_topics

    async def _new_topic(partitions: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        await ensure_topics(broker.bootstrap, [name], partitions)
        return name

    return _new_topic


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A Tansu broker for the test module alone."""
    from advocacy_dev.devstack.broker import TansuBroker
    from advocacy_dev.devstack.net import free_port

    tansu = TansuBroker(free_port(), log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    tansu.start()
    yield tansu
    tansu.stop()


@pytest.fixture(scope="module")
async def sharing(
    pg: EmbeddedPostgres | ExternalPostgres,
    private_broker: TansuBroker,
    dev_keys: DevKeys,
    mint: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Sharing]:
    """The sharing service (role ``all``) on a fresh database and ``private_broker``."""
    from tests.support.sharing import running_sharing

    url = pg.create_database(f"sharing_{uuid.uuid4().hex[:10]}")
    async with running_sharing(
        url, private_broker.bootstrap, dev_keys.jwks_path, tmp_path_factory.mktemp("spool"), mint
    ) as s:
        yield s
