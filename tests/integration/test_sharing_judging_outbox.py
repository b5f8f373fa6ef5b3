"""The verdict worker writes its outbox rows with one array statement (judging._write_outbox), not
through ``add_events``: the rows must be exactly what ``add_events`` writes, in the same order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.migrations import upgrade
from advocacy_common.outbox import add_events, outbox_row
from advocacy_sharing.judging import _write_outbox


def _events(tag: str) -> list[Any]:
    at = datetime.now(UTC)
    return [
        new_event(
            "/advocacy/sharing",
            "t-outbox",
            ShareClicked(
                click_id=f"{tag}-{i}",
                share_id="s1",
                code="AbCdEf1234",
                content_id="c1",
                employee_id=f"e{i % 3}",
                team=None,
                network="linkedin",
                clicked_at=at + timedelta(milliseconds=i),
                verdict=Verdict.counted,
                device="desktop",
                browser="Firefox",
                os="Linux",
                referrer_domain=None,
                country="FR",
            ),
            at=at,
            id=f"clicked-{tag}-{i}",
        )
        for i in range(7)
    ]


async def test_array_outbox_rows_equal_add_events_rows(pg: Any) -> None:
    url = pg.create_database(f"sharing_outbox_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, "advocacy_sharing", url)
    engine = make_engine(url)
    try:
        sessionmaker = make_sessionmaker(engine)
        fast, slow = _events("fast"), _events("slow")
        async with sessionmaker() as session, session.begin():
            await _write_outbox(session, fast)
            await add_events(session, slow)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT event_id, topic, key, event_type, tenant_id, headers, value FROM outbox ORDER BY id"
                    )
                )
            ).all()
        got = [dict(r._mapping) for r in rows]
        want = [outbox_row(e) for e in fast + slow]
        for row in got:
            row["value"] = bytes(row["value"])
        assert [r["event_id"] for r in got] == [w["event_id"] for w in want]  # list order kept
        assert got == want
    finally:
        await engine.dispose()
