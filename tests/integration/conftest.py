"""Integration fixtures: real PostgreSQL and the real broker (``pg`` and ``broker`` from the root
conftest), plus per-test databases and topics so tests never need cleanup.

- ``new_database``: creates a fresh, empty database on ``pg``; returns its SQLAlchemy asyncpg URL.
- ``new_topic``: ``await new_topic(partitions=1)`` -> the name of a fresh topic on ``broker``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres


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
