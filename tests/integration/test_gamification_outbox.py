"""Gamification writes its outbox rows with one JSON-array statement (ledger.add_outbox), not
through ``add_events``: the rows must be exactly what ``add_events`` writes, in the same order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.gamification import BadgeEarned, PointsAwarded
from advocacy_common.migrations import upgrade
from advocacy_common.outbox import add_events, outbox_row
from advocacy_gamification.ledger import add_outbox


def _events(tag: str) -> list[Any]:
    at = datetime(2026, 3, 1, 23, 59, 59, 123456, tzinfo=UTC)
    points = [
        new_event(
            "/advocacy/gamification",
            "t-outbox",
            PointsAwarded(
                employee_id=f"e{i % 3}",
                entry_id=str(100 + i),
                points=-5 if i == 3 else 5,
                action="click",
                cause_event_id=f"cause-{tag}-{i}",
                rule_version=2,
                occurred_at=at + timedelta(milliseconds=i),
                kind="reversal" if i == 3 else "award",
                capped=i == 4,
                reverses_entry_id="99" if i == 3 else None,
                reason="click invalidated: bot — «ünïcode»" if i == 3 else None,
            ),
            at=at + timedelta(seconds=i),
            id=f"awarded-{tag}-{i}",
        )
        for i in range(6)
    ]
    badge = new_event(
        "/advocacy/gamification", "t-outbox", BadgeEarned(employee_id="e1", badge="first_click", earned_at=at)
    )
    return [*points, badge]


async def test_add_outbox_rows_equal_add_events_rows(pg: Any) -> None:
    url = pg.create_database(f"gam_outbox_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, "advocacy_gamification", url)
    engine = make_engine(url)
    try:
        sessionmaker = make_sessionmaker(engine)
        fast, slow = _events("fast"), _events("slow")
        async with sessionmaker() as session, session.begin():
            await add_outbox(session, fast)
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
