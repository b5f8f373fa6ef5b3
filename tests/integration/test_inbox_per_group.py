"""Two consumer groups of one service share its inbox table but each applies every event once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from advocacy_common.consumer import ConsumerRunner, ConsumerSpec
from advocacy_common.db import add_messaging_tables, make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from tests.integration.test_messaging import share


def record(env: Envelope[Any], offset: int) -> ConsumerRecord[bytes, bytes]:
    value = env.value()
    return ConsumerRecord(
        topic="t", partition=0, offset=offset, timestamp=0, timestamp_type=0, key=b"k", value=value,
        checksum=None, serialized_key_size=1, serialized_value_size=len(value), headers=tuple(env.headers()),
    )  # fmt: skip


async def test_each_group_applies_the_event(new_database: str) -> None:
    meta = sa.MetaData()
    add_messaging_tables(meta)
    engine = make_engine(new_database)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    seen: dict[str, int] = {"a": 0, "b": 0}

    def handler(group: str) -> Any:
        async def _h(session: Any, events: Sequence[Envelope[Any]]) -> None:
            seen[group] += len(events)

        return _h

    env = new_event("/advocacy/sharing", "t1", share(1))
    runners = {
        g: ConsumerRunner(
            ConsumerSpec(g, ("t",), handler(g)),
            service="test",
            bootstrap="unused:9092",
            sessionmaker=make_sessionmaker(engine),
            producer=lambda: None,
        )
        for g in ("a", "b")
    }
    for g in ("a", "b", "a", "b"):  # each group sees the event twice (a redelivery)
        await runners[g].process([record(env, 0)])
    await engine.dispose()
    assert seen == {"a": 1, "b": 1}
    assert runners["a"].duplicates == 1 and runners["b"].duplicates == 1
