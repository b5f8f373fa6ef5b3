"""Scenarios 3 and 8, driven at the library level (honestly: no service process is involved).

The relay of every service is ``advocacy_common.outbox.OutboxRelay`` and every consumer
``advocacy_common.consumer.ConsumerRunner``; these tests run those two classes against a real
PostgreSQL database and a broker of their own (``fresh_broker``), with a handler that records each
applied event. A SQLAlchemy hook raises a ``Crash`` (a BaseException, so nothing in the relay
catches it) as the relay is about to commit a sent batch's marks: the broker has acknowledged
every record of the batch and the database has not committed the marks. The engine is then disposed (its
connections close, as with a dead process, releasing the advisory lock) and a new relay starts.

3. Killed between ack and mark 50 times (short: 10): every event applied exactly once, and the
   consumer's inbox skipped every re-published copy (records on the topic - events; a record
   fetched twice across a consumer-group rebalance is skipped too and counted on top).
8. Per-key order: events carry a sequence number per employee and are written while the relay
   is restarted 20 times (short: 6), alternately by a crash between ack and mark and by a graceful
   stop: the consumer applies every employee's events in increasing order, none missing.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import topics
from advocacy_common.consumer import ConsumerRunner, ConsumerSpec
from advocacy_common.db import INBOX, OUTBOX, make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.base import Envelope
from advocacy_common.events.gamification import PointsAwarded
from advocacy_common.kafka import ensure_topics, make_producer
from advocacy_common.outbox import OutboxRelay, add_events
from advocacy_dev.devstack.broker import TansuBroker
from tests.reliability.probes import GroupProbe
from tests.support.helpers import eventually
from tests.support.stackkit import record, sized

EFFECTS = sa.Table(
    "effects",
    sa.MetaData(),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("employee", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("n", sa.BigInteger, sa.Identity(), nullable=False),
)


class Crash(BaseException):
    """The relay process dies here."""


async def _database(pg: Any) -> str:
    url = pg.create_database(f"rel_outbox_{uuid.uuid4().hex[:10]}")
    engine = make_engine(url)
    async with engine.begin() as conn:
        md = sa.MetaData()
        OUTBOX.to_metadata(md)
        INBOX.to_metadata(md)
        await conn.run_sync(md.create_all)
        await conn.run_sync(EFFECTS.metadata.create_all)
    await engine.dispose()
    return url


def _events(tenant: str, employees: Sequence[str], per_employee: int, start: int = 0) -> list[Envelope[Any]]:
    out = []
    for seq in range(start, start + per_employee):
        for emp in employees:
            data = PointsAwarded(
                employee_id=emp,
                entry_id=f"{emp}-{seq}",
                points=seq,  # the sequence number rides in the payload
                action="share",
                cause_event_id="c",
                rule_version=1,
                occurred_at=datetime.now(UTC),
            )
            out.append(new_event("/advocacy/reliability", tenant, data, id=f"{tenant}-{emp}-{seq:06d}"))
    return out


async def _write(url: str, envelopes: Sequence[Envelope[Any]]) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session, session.begin():
        await add_events(session, envelopes)
    await engine.dispose()


async def _handler(session: AsyncSession, envelopes: Sequence[Envelope[Any]]) -> None:
    await session.execute(
        sa.insert(EFFECTS),
        [{"event_id": e.id, "employee": e.data.employee_id, "seq": e.data.points} for e in envelopes],
    )


class _CountingProducer:
    """The shared producer, counting the records handed to it (to tell a batch that sent from one
    that found nothing)."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.sends = 0

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        self.sends += 1
        return await self._producer.send(*args, **kwargs)


async def _run_relay(url: str, bootstrap: str, producer: Any, *, crash_on_mark: int | None, run_for: float) -> str:
    """One relay incarnation: crashes on its ``crash_on_mark``-th mark, or stops gracefully after
    ``run_for`` seconds. Returns how it ended.

    The relay takes and marks a batch in one transaction, sends it, waits for the broker's acks and
    commits: the marks become real at that commit. So the crash is raised as that commit begins
    (SQLAlchemy's ``commit`` event, before COMMIT reaches the server) in a transaction that took a
    batch and sent records: every record acknowledged, no mark committed."""
    engine = make_engine(url)
    counting = _CountingProducer(producer)
    marks = 0

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX SET PUBLISHED_AT"):
            conn.info["sends_at_take"] = counting.sends

    def on_commit(conn: Any) -> None:
        nonlocal marks
        took = conn.info.pop("sends_at_take", None)
        if took is None or counting.sends == took:
            return  # not a batch, or an empty one
        marks += 1
        if crash_on_mark is not None and marks >= crash_on_mark:
            raise Crash

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "commit", on_commit)
    relay = OutboxRelay(engine, lambda: counting, service=f"rel-{uuid.uuid4().hex[:6]}", batch_size=37)
    relay.lock_id = 4242  # every incarnation competes for the same lock, as one service's relays do
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        done, _ = await asyncio.wait([task], timeout=run_for)
        if task in done:
            exc = task.exception()
            return "crash" if isinstance(exc, Crash) else f"ended: {exc!r}"
        stop.set()
        await asyncio.wait_for(task, 15)
        return "graceful"
    except BaseException as e:
        if isinstance(e, Crash):
            return "crash"
        raise
    finally:
        if not task.done():
            task.cancel()
        await engine.dispose()


async def _unsent(url: str) -> int:
    engine = make_engine(url)
    async with engine.connect() as conn:
        n = int(await conn.scalar(sa.select(sa.func.count()).where(OUTBOX.c.published_at.is_(None))) or 0)
    await engine.dispose()
    return n


async def _consume_all(url: str, bootstrap: str, producer: Any, expected: int) -> tuple[ConsumerRunner, list[Any]]:
    engine = make_engine(url)
    group = f"rel-consumer-{uuid.uuid4().hex[:6]}"
    runner = ConsumerRunner(
        ConsumerSpec(group_id=group, topics=(topics.GAMIFICATION,), handler=_handler),
        service="reliability",
        bootstrap=bootstrap,
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: producer,
        batch_max=100,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with GroupProbe(bootstrap, group, (topics.GAMIFICATION,)) as probe:

            async def caught_up() -> bool:
                return runner.applied >= expected and await probe.lag() == 0

            await eventually(caught_up, timeout=60, interval=0.2, what=f"the consumer applies {expected} events")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(EFFECTS.c.employee, EFFECTS.c.seq).order_by(EFFECTS.c.n))).all()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await engine.dispose()
    return runner, list(rows)


async def test_s3_relay_killed_between_ack_and_mark_every_effect_once(pg: Any, fresh_broker: TansuBroker) -> None:
    kills = sized(10, 50)
    employees = [f"e{i:02d}" for i in range(20)]
    per_employee = sized(25, 200)  # a kill commits at most two batches of 37: 50 kills need more than 2,000 events
    url = await _database(pg)
    bootstrap = fresh_broker.bootstrap
    await ensure_topics(bootstrap, topics.ALL_TOPICS, 6)
    tenant = f"s3-{uuid.uuid4().hex[:6]}"
    await _write(url, _events(tenant, employees, per_employee))
    n = len(employees) * per_employee
    producer = make_producer(bootstrap)
    await producer.start()
    rng = random.Random(3)
    try:
        endings = [
            await _run_relay(url, bootstrap, producer, crash_on_mark=rng.randint(1, 3), run_for=20)
            for _ in range(kills)
        ]
        assert endings == ["crash"] * kills, endings
        while await _unsent(url):
            await _run_relay(url, bootstrap, producer, crash_on_mark=None, run_for=2)
        async with GroupProbe(bootstrap, "nobody", (topics.GAMIFICATION,)) as probe:
            on_topic = sum((await probe.ends()).values())
        runner, rows = await _consume_all(url, bootstrap, producer, n)
    finally:
        await producer.stop()
    assert len(rows) == n and len(set(rows)) == n  # every effect once
    # every crash came after acknowledged sends, so each one left at least a record to send again
    # (none: the crash point no longer sits between the broker's ack and the mark)
    assert on_topic - n >= kills, (on_topic, n, kills)
    # every re-published copy was skipped by the inbox (more may be: a record fetched twice across a
    # consumer-group rebalance is skipped the same way)
    assert runner.duplicates >= on_topic - n, (runner.duplicates, on_topic, n)
    record(
        "3-relay-killed-between-ack-and-mark",
        events=n,
        kills=kills,
        records_on_topic=on_topic,
        republished=on_topic - n,
        duplicates_skipped=runner.duplicates,
        effects=len(rows),
    )


async def test_s8_per_key_order_survives_relay_restarts(pg: Any, fresh_broker: TansuBroker) -> None:
    restarts = sized(6, 20)
    employees = [f"e{i:02d}" for i in range(30)]
    url = await _database(pg)
    bootstrap = fresh_broker.bootstrap
    await ensure_topics(bootstrap, topics.ALL_TOPICS, 6)
    tenant = f"s8-{uuid.uuid4().hex[:6]}"
    producer = make_producer(bootstrap)
    await producer.start()
    rng = random.Random(8)
    written = 0
    try:
        endings = []
        for k in range(restarts):
            # new events for every employee, in sequence, while this relay incarnation runs
            batch = _events(tenant, employees, 3, start=3 * k)
            writer = asyncio.create_task(_write(url, batch))
            crash = rng.randint(1, 4) if k % 2 == 0 else None
            endings.append(await _run_relay(url, bootstrap, producer, crash_on_mark=crash, run_for=1.0))
            await writer
            written += len(batch)
        while await _unsent(url):
            await _run_relay(url, bootstrap, producer, crash_on_mark=None, run_for=2)
        runner, rows = await _consume_all(url, bootstrap, producer, written)
    finally:
        await producer.stop()
    seen: dict[str, list[int]] = {}
    for emp, seq in rows:
        seen.setdefault(emp, []).append(seq)
    inversions = sum(1 for seqs in seen.values() for a, b in itertools.pairwise(seqs) if b <= a)
    record(
        "8-per-key-order",
        employees=len(employees),
        events=written,
        restarts=restarts,
        endings={e: endings.count(e) for e in set(endings)},
        duplicates_skipped=runner.duplicates,
        inversions=inversions,
    )
    assert inversions == 0, {e: s for e, s in seen.items() if s != sorted(s)}
    assert all(seqs == list(range(3 * restarts)) for seqs in seen.values()), "an event is missing"
