"""Background tasks that die: restarted with backoff; dying 3 times within the window fails /healthz
(the real Runtime.spawn and the real health router, in process; a task "killed" = it raises)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from advocacy_common.runtime import Runtime, ServiceDefinition, _health_router
from advocacy_common.settings import ServiceSettings
from advocacy_common.supervision import FIRST_PAUSE, MAX_PAUSE, RESET_AFTER, CrashWindow, backoff

pytestmark = pytest.mark.unit


class _Settings(ServiceSettings):
    service_name = "supervised"


def test_the_window_trips_on_the_third_death_within_it_and_stays_tripped() -> None:
    w = CrashWindow(limit=3, seconds=300)
    assert not w.died(0) and not w.died(100)
    assert not w.died(350)  # the first death has left the window: two remain
    assert w.died(360) and w.tripped
    assert w.died(10_000)  # a replaced pod is what clears it


def test_pauses_double_to_a_ceiling_and_reset_after_a_healthy_run() -> None:
    pauses = [FIRST_PAUSE]
    for _ in range(10):
        pauses.append(backoff(pauses[-1], ran_for=1))
    assert pauses[:4] == [0.5, 1.0, 2.0, 4.0] and pauses[-1] == MAX_PAUSE
    assert backoff(MAX_PAUSE, ran_for=RESET_AFTER) == FIRST_PAUSE


async def _healthz(runtime: Runtime) -> httpx.Response:
    app = FastAPI()
    app.include_router(_health_router())
    app.state.runtime = runtime
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get("/healthz")


def _runtime() -> Runtime:
    settings = _Settings(dev_mode=True, task_crash_limit=3, task_crash_window_seconds=60)
    none: Any = None
    return Runtime(settings=settings, definition=ServiceDefinition(name="supervised"), engine=none, sessionmaker=none)


async def _flaky(deaths: int, attempts: list[int], running: asyncio.Event, stop: asyncio.Event) -> None:
    attempts.append(len(attempts) + 1)
    if len(attempts) <= deaths:
        raise RuntimeError(f"killed ({len(attempts)})")
    running.set()
    await stop.wait()


async def test_a_task_killed_once_comes_back_and_the_pod_stays_live() -> None:
    rt = _runtime()
    attempts: list[int] = []
    running = asyncio.Event()
    rt.spawn(lambda: _flaky(1, attempts, running, rt.stop), "flaky")
    await asyncio.wait_for(running.wait(), 5)
    assert attempts == [1, 2]
    r = await _healthz(rt)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    rt.stop.set()
    await asyncio.wait_for(asyncio.gather(*rt.tasks), 5)


async def test_a_task_killed_three_times_in_a_row_fails_healthz() -> None:
    rt = _runtime()
    attempts: list[int] = []
    running = asyncio.Event()
    rt.spawn(lambda: _flaky(3, attempts, running, rt.stop), "flaky")
    await asyncio.wait_for(running.wait(), 10)  # restarted after each death (0.5 s, 1 s pauses)
    assert attempts == [1, 2, 3, 4]
    r = await _healthz(rt)
    assert r.status_code == 503 and r.json()["status"] == "failing"
    assert "flaky" in r.json()["tasks"] and "died 3 times" in r.json()["tasks"]["flaky"]
    rt.stop.set()
    await asyncio.wait_for(asyncio.gather(*rt.tasks), 5)
