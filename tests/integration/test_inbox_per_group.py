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


async def test_a_lock_conflict_applies_the_batch_again_and_dead_letters_nothing(new_database: str) -> None:
    """A deadlock (40P01) in the handler, twice: the batch's transaction is applied again, whole.
    Applying it one by one instead would dead-letter the event running at the second deadlock (and
    with no producer here, raise)."""
    meta = sa.MetaData()
    add_messaging_tables(meta)
    engine = make_engine(new_database)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
        await conn.execute(sa.text("CREATE TABLE effects (id text PRIMARY KEY)"))
    calls = 0

    async def handler(session: Any, events: Sequence[Envelope[Any]]) -> None:
        nonlocal calls
        calls += 1
        for e in events:
            await session.execute(sa.text("INSERT INTO effects (id) VALUES (:id)"), {"id": e.id})
        if calls <= 2:  # the deadlock detector picks this transaction, after its first writes
            await session.execute(
                sa.text("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$")
            )

    runner = ConsumerRunner(
        ConsumerSpec("g", ("t",), handler),
        service="test",
        bootstrap="unused:9092",
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: None,
    )
    envs = [new_event("/advocacy/sharing", "t1", share(i)) for i in range(3)]
    await runner.process([record(env, n) for n, env in enumerate([*envs, envs[0]])])
    async with engine.connect() as conn:
        applied = set((await conn.execute(sa.text("SELECT id FROM effects"))).scalars())
        inbox = (await conn.execute(sa.text("SELECT count(*), count(*) FILTER (WHERE dead_lettered) FROM inbox"))).one()
    await engine.dispose()
    assert calls == 3 and applied == {e.id for e in envs}
    assert tuple(inbox) == (3, 0)
    assert (runner.applied, runner.duplicates, runner.dead_lettered) == (3, 1, 0)
