"""``add_events`` writes every service's outbox rows with one JSON-rows statement: the rows must be
exactly ``outbox_row`` of each envelope (what the relay publishes, the value's bytes included), in
list order (ids keep it)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.events import new_event
from advocacy_common.events.gamification import BadgeEarned, PointsAwarded
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.migrations import upgrade
from advocacy_common.outbox import add_events, outbox_row


def _awards(tag: str) -> list[Any]:
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
                # the value travels as JSON text inside the rows' JSON: escapes must come back as bytes
                reason='click invalidated: bot — «ünïcode» "q" \\ \n \x00 \x1f \u2028 😀' if i == 3 else None,
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


def _clicks(tag: str) -> list[Any]:
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


async def test_add_events_rows_equal_outbox_row_in_list_order(pg: Any) -> None:
    url = pg.create_database(f"outbox_rows_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(upgrade, "advocacy_gamification", url)
    engine = make_engine(url)
    try:
        sessionmaker = make_sessionmaker(engine)
        first, second = [*_awards("a"), *_clicks("a")], [*_clicks("b"), *_awards("b")]
        async with sessionmaker() as session, session.begin():
            await add_events(session, first)
            await add_events(session, [])  # nothing to write: no statement, no error
            await add_events(session, second)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT event_id, topic, key, event_type, tenant_id, headers, value FROM outbox ORDER BY id"
                    )
                )
            ).all()
        got = [dict(r._mapping) for r in rows]
        want = [outbox_row(e) for e in first + second]
        for row in got:
            row["value"] = bytes(row["value"])
        assert [r["event_id"] for r in got] == [w["event_id"] for w in want]  # list order kept
        assert got == want
    finally:
        await engine.dispose()
