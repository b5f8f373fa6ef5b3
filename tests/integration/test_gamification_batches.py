"""The consumer's batched path against the one-event-at-a-time path: nothing lost, nothing doubled.

One generated programme of clicks (some not counted, some invalidated later), shares and
conversions for a few people over several days in Asia/Tokyo, under two rule versions (different
points and daily caps, the second in effect from the middle of the range), arriving with whole
days late and out of order (but in time order within a person's day, so both paths cap the same
events). Tenant A gets each event alone, in its own transaction; tenant B gets the same events
through ``ConsumerRunner.process`` in randomly sized batches, with redeliveries (the same event id
again, in the same batch and in later ones). Every figure must come out the same: the ledger
entry by entry (points, capped, rule version), the window totals and score counts, balances,
badge counts and badges, per person the points and entries the ``points.awarded.v2`` events sum;
and the week and month totals must equal the ledger summed by the Tokyo calendar in SQL.
"""

from __future__ import annotations

import asyncio
import random
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord

from advocacy_common import consumer
from advocacy_common.consumer import ConsumerRunner
from advocacy_common.events import Envelope
from advocacy_common.events.sharing import ClickInvalidated, ConversionRecorded, ShareClicked, ShareCreated, Verdict
from advocacy_gamification.consumers import CONSUMERS
from advocacy_gamification.db import RULE_SETS
from advocacy_gamification.domain.rules import RulesBody
from tests.integration.test_gamification_support import Gam, from_sharing, gam, gam_url, tenant_settings

__all__ = ["gam", "gam_url"]

ZONE = "Asia/Tokyo"
T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 22:00 in Tokyo: events straddle local midnights
PEOPLE = ["ann", "ben", "cy"]


def rules(click: int, cap: int) -> dict[str, Any]:
    body = RulesBody.model_validate(
        {
            "points": {"click": click, "share": 7},
            "daily_caps": {"click": cap, "share": 2},
            "badges": {"click_milestone": 6, "share_milestone": 3},
        }
    )
    return body.model_dump(mode="json")


Payload = Callable[[], Any]


def programme(seed: int) -> list[Payload]:
    """Event payload builders in arrival order (each call makes the same payload)."""
    rng = random.Random(seed)
    facts: list[tuple[datetime, int, Payload]] = []  # (occurred, arrival rank, builder)
    delays: dict[date, timedelta] = {}  # per Tokyo day: whole days arrive late, out of order

    def arrive(at: datetime) -> datetime:
        day = at.astimezone(ZoneInfo(ZONE)).date()
        return at + delays.setdefault(day, timedelta(hours=rng.randrange(0, 96)))

    for i in range(120):
        emp = rng.choice(PEOPLE)
        at = T0 + timedelta(minutes=rng.randrange(0, 5 * 24 * 60))
        kind = rng.choices(["click", "share", "conversion"], [8, 2, 1])[0]
        if kind == "click":
            verdict = rng.choices([Verdict.counted, Verdict.bot], [9, 1])[0]
            cid = f"k{seed}-{i}"

            def c(emp: str = emp, at: datetime = at, verdict: Verdict = verdict, cid: str = cid, n: int = i) -> Any:
                return ShareClicked(
                    employee_id=emp,
                    click_id=cid,
                    share_id="s",
                    code="code",
                    content_id=f"c{n % 3}",
                    network="linkedin",
                    clicked_at=at,
                    verdict=verdict,
                )

            facts.append((arrive(at), len(facts), c))
            if verdict is Verdict.counted and rng.random() < 0.15:

                def inv(emp: str = emp, at: datetime = at, cid: str = cid) -> Any:
                    return ClickInvalidated(
                        employee_id=emp,
                        click_id=cid,
                        share_id="s",
                        content_id="c1",
                        network="linkedin",
                        clicked_at=at,
                        reason="fraud",
                        invalidated_at=at + timedelta(hours=1),
                    )

                # after its click, possibly a few days later
                facts.append((arrive(at) + timedelta(hours=rng.randrange(1, 72)), len(facts), inv))
        elif kind == "share":

            def s(emp: str = emp, at: datetime = at, n: int = i) -> Any:
                return ShareCreated(
                    employee_id=emp,
                    share_id=f"s{seed}-{n}",
                    content_id="c1",
                    network="linkedin",
                    code=f"code{n}",
                    created_at=at,
                    employee_name=emp.title(),
                    team="blue" if emp != "cy" else None,
                )

            facts.append((arrive(at), len(facts), s))
        else:

            def v(emp: str = emp, at: datetime = at, n: int = i) -> Any:
                return ConversionRecorded(
                    employee_id=emp,
                    conversion_id=f"v{seed}-{n}",
                    click_id="k",
                    share_id="s",
                    content_id="c1",
                    network="linkedin",
                    kind="sale",
                    external_id=f"x{n}",
                    occurred_at=at,
                )

            facts.append((arrive(at), len(facts), v))
    # the arrival order keeps each person's day in time order (a later arrival never occurred
    # earlier the same day), so the daily caps pick the same events on both paths
    return [build for _, _, build in sorted(facts, key=lambda f: (f[0], f[1]))]


def record(env: Envelope[Any], offset: int, partitions: int = 1) -> ConsumerRecord[bytes, bytes]:
    """As the broker delivers it; with ``partitions``, in a partition chosen by the key (a stand-in
    for the producer's hash: one key, one partition)."""
    value = env.value()
    return ConsumerRecord(
        topic=env.topic,
        partition=zlib.crc32(env.key.encode()) % partitions,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=env.key.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(env.key),
        serialized_value_size=len(value),
        headers=env.headers(),
    )


async def setup(g: Gam, tenant: str) -> None:
    await g.apply(tenant_settings(tenant, time_zone=ZONE, week_starts_on="sunday"))
    async with g.sm() as s, s.begin():
        for version, effective, body in (
            (1, T0 - timedelta(days=30), rules(click=2, cap=4)),
            (2, T0 + timedelta(days=2, hours=5), rules(click=3, cap=2)),
        ):
            await s.execute(
                sa.insert(RULE_SETS).values(
                    tenant_id=tenant, version=version, effective_at=effective, body=body, created_by="boss"
                )
            )


async def state(g: Gam, tenant: str) -> dict[str, Any]:
    q: dict[str, str] = {
        "ledger": "SELECT employee_id, entry_type, action, points, balance_delta, capped, rule_version, occurred_at "
        "FROM ledger WHERE tenant_id = :t",
        "totals": 'SELECT "window", window_start, employee_id, team, points, ranked FROM points_totals '
        "WHERE tenant_id = :t",
        "counts": 'SELECT "window", window_start, points, count FROM score_counts WHERE tenant_id = :t AND count <> 0',
        "balances": "SELECT employee_id, balance FROM balances WHERE tenant_id = :t",
        # not the streak: a share from an earlier week arriving late is ignored when it comes alone
        # but counted when it shares a batch with the later week's (each batch sorts its weeks)
        "stats": "SELECT employee_id, shares, clicks, conversions FROM member_stats WHERE tenant_id = :t",
        "badges": "SELECT employee_id, badge FROM badges_earned WHERE tenant_id = :t",
        "members": "SELECT employee_id, name, team FROM members WHERE tenant_id = :t",
    }
    out = {k: sorted(tuple(r) for r in await g.rows(sql, t=tenant)) for k, sql in q.items()}
    # points.awarded.v2 sums a person's entries per batch: per person, the events' points and entry
    # counts add up to the same whatever the batches were
    out["awarded"] = sorted(
        tuple(r)
        for r in await g.rows(
            "SELECT v->>'employee_id', sum(CAST(v->>'points' AS int)), sum(CAST(v->>'entry_count' AS int)) "
            "FROM (SELECT CAST(convert_from(value, 'UTF8') AS jsonb) AS v FROM outbox "
            "WHERE tenant_id = :t AND event_type = 'io.advocacy.points.awarded.v2') AS s GROUP BY 1",
            t=tenant,
        )
    )
    return out


@pytest.mark.parametrize(("seed", "replicas", "lanes"), [(1, 1, False), (2, 1, False), (3, 2, False), (4, 1, True)])
async def test_batches_equal_one_at_a_time(
    gam: Gam, seed: int, replicas: int, lanes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of any size, redeliveries included, land on the state of one event at a time. With
    two replicas, each batch is split by partition and the halves are applied at once, as two
    replicas of the group do: two transactions on disjoint people, sharing the boards' rows. With
    ``lanes``, every batch of two events or more is split by the consumer's lanes (ADR 0028): two
    transactions at once, each person's events in one."""
    assert CONSUMERS[0].lanes == 2
    monkeypatch.setattr(consumer, "LANE_MIN_EVENTS", 2 if lanes else 10**9)
    builders = programme(seed)
    one, batched = f"one-{uuid.uuid4().hex[:8]}", f"bat-{uuid.uuid4().hex[:8]}"
    while lanes and len({zlib.crc32(f"{batched}:{p}".encode()) % 2 for p in PEOPLE}) < 2:
        batched = f"bat-{uuid.uuid4().hex[:8]}"  # people in both lanes (events are keyed tenant:person)
    for t in (one, batched):
        await setup(gam, t)

    for build in builders:
        await gam.apply(from_sharing(one, build()))

    rng = random.Random(seed)
    envs = [from_sharing(batched, build()) for build in builders]
    stream: list[Envelope[Any]] = []
    for i, env in enumerate(envs):
        stream.append(env)
        if rng.random() < 0.1:  # redelivered in the same batch or a later one
            stream.insert(rng.randrange(len(stream), len(stream) + 1), env)
        if rng.random() < 0.1 and i > 5:
            stream.append(envs[rng.randrange(0, i)])
    runner = ConsumerRunner(
        CONSUMERS[0], service="gamification", bootstrap="unused", sessionmaker=gam.sm, producer=lambda: None
    )
    records = [record(env, n, partitions=6) for n, env in enumerate(stream)]
    i = 0
    while i < len(records):
        size = rng.choice([1, 3, 17, 40, 200])
        batch = records[i : i + size]
        parts = [[r for r in batch if r.partition % replicas == k] for k in range(replicas)]
        await asyncio.gather(*(runner.process(part) for part in parts if part))
        i += size
    # clicks are keyed (ADR 0022): no inbox drops their copies, the handler does (``fresh_facts``),
    # so the runner counts a click's copy as applied and only the other types' copies as duplicates
    clicks = sum(1 for e in envs if type(e.data) is ShareClicked)
    click_copies = sum(1 for e in stream if type(e.data) is ShareClicked) - clicks
    assert runner.applied == len(envs) + click_copies
    assert runner.duplicates == len(stream) - len(envs) - click_copies
    assert click_copies, "the stream should redeliver a click"
    assert runner.dead_lettered == 0

    a, b = await state(gam, one), await state(gam, batched)
    for k in a:
        assert a[k] == b[k], k
    # nothing lost or doubled: one award per counted click, share and conversion
    awards = sum(
        1
        for build in builders
        if isinstance(p := build(), ShareCreated | ConversionRecorded)
        or (isinstance(p, ShareClicked) and p.verdict is Verdict.counted)
    )
    assert sum(1 for r in b["ledger"] if r[1] == "award") == awards
    # every entry is in one points.awarded.v2, and the events' points are the ledger's
    assert sum(r[2] for r in b["awarded"]) == len(b["ledger"])
    assert sum(r[1] for r in b["awarded"]) == sum(r[3] for r in b["ledger"])
    assert any(r[5] for r in b["ledger"]), "the programme should hit a daily cap"
    assert any(r[1] == "reversal" for r in b["ledger"])
    assert {r[6] for r in b["ledger"]} == {1, 2}
    # the week (Sunday) and month windows hold the ledger summed by the Tokyo calendar
    for window, start in (
        ("week", "(d - CAST(EXTRACT(dow FROM d) AS int))"),
        ("month", "CAST(date_trunc('month', d) AS date)"),
    ):
        want = await gam.rows(
            f"SELECT {start} AS s, employee_id, sum(points) FROM "
            f"(SELECT CAST(timezone('{ZONE}', occurred_at) AS date) AS d, employee_id, points FROM ledger "
            "WHERE tenant_id = :t AND points <> 0) l GROUP BY 1, 2 HAVING sum(points) <> 0 ORDER BY 1, 2",
            t=batched,
        )
        got = [(r[1], r[2], r[4]) for r in b["totals"] if r[0] == window and r[4] != 0]
        assert sorted(got) == [tuple(r) for r in want], window
