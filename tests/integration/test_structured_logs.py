"""Log lines are JSON objects with fields, not one %-formatted string: a consumer batch's line."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from advocacy_common.consumer import ConsumerRunner, ConsumerSpec
from advocacy_common.db import add_messaging_tables, make_engine, make_sessionmaker
from advocacy_common.events import Envelope, new_event
from advocacy_common.observability import configure_logging
from tests.integration.test_inbox_per_group import record
from tests.integration.test_messaging import share


async def test_a_consumer_batch_logs_one_json_line_with_its_fields(
    new_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = sa.MetaData()
    add_messaging_tables(meta)
    engine = make_engine(new_database)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)

    async def handler(session: Any, events: Sequence[Envelope[Any]]) -> None:
        pass

    runner = ConsumerRunner(
        ConsumerSpec("g-logs", ("t",), handler),
        service="test",
        bootstrap="unused:9092",
        sessionmaker=make_sessionmaker(engine),
        producer=lambda: None,
    )
    configure_logging("test", "INFO", json=True)
    logging.getLogger("advocacy.consumer").setLevel(logging.DEBUG)
    try:
        first, again = new_event("/advocacy/sharing", "t-1", share(1)), new_event("/advocacy/sharing", "t-2", share(2))
        await runner.process([record(first, 0)])
        capsys.readouterr()
        await runner.process([record(first, 0), record(again, 1)])
    finally:
        logging.getLogger("advocacy.consumer").setLevel(logging.NOTSET)
        await engine.dispose()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (line,) = [x for x in lines if x.get("event") == "consumer batch applied"]
    assert line["level"] == "debug" and line["service"] == "test" and line["logger"] == "advocacy.consumer"
    assert {k: line[k] for k in ("group", "records", "applied", "duplicates", "dead_lettered")} == {
        "group": "g-logs",
        "records": 2,
        "applied": 1,
        "duplicates": 1,
        "dead_lettered": 0,
    }
    assert line["event_types"] == {again.type: 1}
    assert line["tenant_ids"] == ["t-2"] and line["event_ids"] == [again.id]
    assert isinstance(line["duration_ms"], float)
