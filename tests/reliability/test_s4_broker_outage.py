"""Scenario 4: the broker stopped while the APIs take writes and clicks.

A private stack (content, sharing, metrics, gamification) on a broker of its own. With the broker
down (60 s full, 10 s short; Tansu keeps nothing, so it comes back empty) the load generator keeps
creating content (content API), shares of content published before the outage (sharing API) and
clicks (``/r/``): every one must be answered 2xx/302. In the short form more clicks go in before
the outage than during it, all counted by metrics, so every click consumer sits at a position beyond
the end of the log the services re-publish after the wipe: a consumer that keeps its old position
(or trusts an offset committed in the lost log) skips re-published clicks and the checker catches it
in CI. The full form keeps the shape that found issue 22's loss: every click during the outage, the
click journal's sends held by the producer while the broker is away. Ground truth: the shares and 302s per
employee, and the content ids created during the outage. After the broker returns the services
notice the lost log, recreate the topics and re-publish from their outboxes and the click journal;
the checker wants, within 60 s of the broker's return: metrics' counted clicks and gamification's
points per employee exact, and sharing knowing every content item created during the outage (a
share of it is accepted).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_dev.devstack.broker import TansuBroker
from tests.reliability.probes import explain_click_path, group_offsets
from tests.reliability.s1_groups import EVERY_GROUP
from tests.support.helpers import eventually
from tests.support.stackkit import PrivateStack, record, running_stack, sized
from tests.support.traffic import (
    click_once,
    drive_clicks,
    leaderboard_points,
    make_shares,
    metrics_clicks,
    wait_exact,
)

OUTAGE = sized(10.0, 60.0)
EMPLOYEES = sized(30, 200)
RATE = sized(60.0, 100.0)  # clicks per second during the outage
# Clicks before the outage; short: more than the outage brings (about OUTAGE x RATE x 0.8).
BEFORE = sized(1_200, 0)


@pytest.fixture
def outage_stack(pg: Any, fresh_broker: TansuBroker, dev_keys: DevKeys, tmp_path: Path) -> Iterator[PrivateStack]:
    with running_stack(
        server_url=pg.server_url,
        bootstrap=fresh_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "s4",
        extra_env={"sharing": {"SHARING_BROKER_WATCH_SECONDS": "1"}},
    ) as s:
        yield s


async def test_broker_down_every_request_answered_and_nothing_missing(
    outage_stack: PrivateStack, fresh_broker: TansuBroker
) -> None:
    s = outage_stack
    tenant = f"s4-{uuid.uuid4().hex[:8]}"
    rng = random.Random(4)
    employees = [f"e{i:04d}" for i in range(EMPLOYEES)]
    half = employees[: EMPLOYEES // 2]
    truth = await make_shares(s, tenant, half)  # shares before the outage
    content_id = f"c-{uuid.uuid4().hex[:8]}"
    # a second item, published before the outage, for shares made during it
    await make_shares(s, tenant, [employees[0]], content_id=content_id)
    truth.shares[employees[0]] += 1
    admin = s.token(tenant, "admin", "admin")
    if BEFORE:
        plan = [rng.choice(list(truth.codes)) for _ in range(BEFORE)]
        await drive_clicks(s.url("sharing"), truth, plan, concurrency=16, first_visitor=20_000_000)
        assert truth.statuses == {302: BEFORE}, truth.statuses
        before = {e: truth.clicks.get(e, 0) for e in employees}
        await wait_exact(
            lambda: metrics_clicks(s, tenant, employees), before, timeout=60, what="metrics before the outage"
        )
    answers: dict[str, dict[int, int]] = {"content": {}, "shares": {}, "clicks": {}}
    created: list[str] = []

    def note(kind: str, status: int) -> None:
        answers[kind][status] = answers[kind].get(status, 0) + 1

    fresh_broker.stop()
    down_at = time.monotonic()
    limits = httpx.Limits(max_connections=32)
    async with (
        httpx.AsyncClient(base_url=s.url("sharing"), timeout=10, limits=limits) as sharing,
        s.client("content", admin) as content,
    ):

        async def writes() -> None:
            for emp in employees[EMPLOYEES // 2 :]:
                token = s.token(tenant, emp, "employee", team="t", name=emp)
                r = await sharing.post(
                    "/v1/shares",
                    json={"content_id": content_id, "network": "linkedin"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                note("shares", r.status_code)
                if r.status_code in (200, 201):
                    truth.codes[r.json()["code"]] = emp
                    truth.shares[emp] = truth.shares.get(emp, 0) + 1
                r = await content.post("/v1/content", json={"title": f"during {emp}", "url": "https://example.com/d"})
                note("content", r.status_code)
                if r.status_code == 201:
                    created.append(r.json()["id"])
                await asyncio.sleep(OUTAGE / (EMPLOYEES - EMPLOYEES // 2) * 0.8)

        visitors = iter(range(10_000, 10_000_000))  # one new visitor per click, across both senders

        async def clicks() -> None:
            while time.monotonic() - down_at < OUTAGE:
                code = rng.choice(list(truth.codes))
                status, seconds = await click_once(sharing, code, next(visitors))
                truth.answered(status, truth.codes.get(code), seconds)
                note("clicks", status)
                await asyncio.sleep(2 / RATE)

        await asyncio.gather(writes(), *(clicks() for _ in range(2)))
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
    fresh_broker.start()
    back_at = time.monotonic()
    assert set(answers["clicks"]) == {302}, answers
    assert set(answers["shares"]) <= {200, 201} and set(answers["content"]) == {201}, answers

    want_clicks = {e: truth.clicks.get(e, 0) for e in employees}
    want_points = {e: 10 * truth.shares.get(e, 0) + truth.clicks.get(e, 0) for e in employees}
    try:
        t_metrics = await wait_exact(
            lambda: metrics_clicks(s, tenant, employees), want_clicks, timeout=60, what="metrics"
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\n{await explain_click_path(s, tenant)}") from None
    t_points = await wait_exact(lambda: leaderboard_points(s, tenant), want_points, timeout=60, what="points")
    token = s.token(tenant, employees[0], "employee")
    async with s.client("sharing", token) as c:

        async def known() -> bool:
            for cid in created:
                r = await c.post("/v1/shares", json={"content_id": cid, "network": "x"})
                if r.status_code not in (200, 201):
                    return False
            return True

        await eventually(known, timeout=max(1.0, 60 - (time.monotonic() - back_at)), what="content of the outage")
    drained = time.monotonic() - back_at
    # every group commits exactly the end of every partition (none beyond it, none short), soon
    deadline = time.monotonic() + 30
    while True:
        offsets = await group_offsets(s.bootstrap, EVERY_GROUP)
        behind = {g: {tp: o for tp, o in ps.items() if len(set(o.split("/"))) != 1} for g, ps in offsets.items()}
        if not any(behind.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    record(
        "4-broker-outage",
        outage_s=OUTAGE,
        answers=answers,
        clicks_before_outage=BEFORE,
        clicks_during_outage=truth.total_clicks - BEFORE,
        content_created_during_outage=len(created),
        exact_metrics_after_return_s=round(t_metrics, 2),
        exact_points_after_return_s=round(t_points, 2),
        everything_drained_s=round(drained, 2),
        group_offsets_committed_end=offsets,
    )
    assert drained < 60
    # every group has committed exactly the end of every partition (none beyond it, none short)
    assert not any(behind.values()), behind
