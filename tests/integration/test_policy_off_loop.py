"""Policy checks run in a real process pool (issue 12): the loop that answers ``/r/`` never runs the
matcher. The same violations as a check in this process; another process's pid; a full pool answers
429; a dead worker is replaced; shutdown stops the workers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures.process import BrokenProcessPool
from types import MappingProxyType

import pytest

from advocacy_common import offload, policycheck
from advocacy_common.errors import TooManyRequests
from advocacy_common.networks import Network
from advocacy_common.policy import MATCHERS, Policy, check_message, message_length

pytestmark = pytest.mark.integration

POLICY = Policy(
    version=3,
    blocked_terms=("confidential", "acme internal", "acme internal roadmap", *(f"acme x{k}" for k in range(2000))),
    required_disclosures=MappingProxyType({"linkedin": "#employee"}),
    allowed_domains=("acme.com",),
    max_lengths=MappingProxyType({"x": 200}),
)
MESSAGES: list[tuple[Network, str, str | None]] = [
    (Network.linkedin, "C0nf!dential: the @cme internal roadmap, see https://evil.io/x", None),
    (Network.x, "acme x1999 " * 30, "https://s.io/r/abcdefgh"),
    (Network.linkedin, "all good #employee https://www.acme.com/a", None),
]


@pytest.fixture
async def pool() -> AsyncIterator[offload.Offload]:
    p = offload.Offload("test", workers=1, max_pending=4, wait_seconds=5)
    yield p
    await p.shutdown()


async def test_checks_run_in_another_process_with_the_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "POOL", offload.Offload("test-policy"))
    try:
        MATCHERS.clear()
        judged = await policycheck.judge_many(POLICY, MESSAGES)
        assert [j.length for j in judged] == [message_length(n, t, link) for n, t, link in MESSAGES]
        found = [j.violations for j in judged]
        assert found == [check_message(POLICY, n, t, link=link) for n, t, link in MESSAGES]
        assert {v.rule for v in found[0]} == {"blocked_term", "missing_disclosure", "domain_not_allowed"}
        assert found[2] == []
        MATCHERS.clear()
        assert await policycheck.check(POLICY, Network.x, MESSAGES[1][1], link=MESSAGES[1][2]) == found[1]
        assert len(MATCHERS) == 0  # the term list was compiled in the worker, not here
        assert offload.POOL.started
        worker = await offload.POOL.run(os.getpid)
        assert worker != os.getpid()
    finally:
        await offload.POOL.shutdown()


async def test_a_full_pool_answers_429_and_the_loop_keeps_running(pool: offload.Offload) -> None:
    pool.configure(workers=1, max_pending=1, wait_seconds=0.2)
    busy = asyncio.create_task(pool.run(time.sleep, 2))
    while pool.pending == 0:
        await asyncio.sleep(0.01)
    ticks = 0
    with pytest.raises(TooManyRequests) as refused:
        waiting = asyncio.create_task(pool.run(os.getpid))
        while not waiting.done():
            ticks += 1
            await asyncio.sleep(0.01)
        await waiting
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "1"}
    assert ticks > 1  # the loop ran while the call waited for a place
    await busy
    assert await pool.run(os.getpid) != os.getpid()


async def test_a_dead_worker_is_replaced(pool: offload.Offload) -> None:
    first = await pool.run(os.getpid)
    with pytest.raises(BrokenProcessPool):
        await pool.run(os._exit, 1)  # dies twice: the call is retried once on a new pool
    second = await pool.run(os.getpid)
    assert second not in (first, os.getpid())


async def test_shutdown_stops_the_workers_and_a_later_call_starts_new_ones(pool: offload.Offload) -> None:
    first = await pool.run(os.getpid)
    await pool.shutdown()
    assert not pool.started
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    assert await pool.run(os.getpid) not in (first, os.getpid())
