"""Traffic and polling helpers for e2e tests (HTTP only, bounded waits)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from advocacy_common.auth.devkeys import DevKeys, mint_token

BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
]

ACCEPT_LANGUAGE = "en-US,en;q=0.9"
"""What a browser sends on every navigation: a person's click carries it (one without it is a
``no_accept_language`` bot, services/sharing/README.md)."""


def visitor_ip(i: int, net: int = 73) -> str:
    """A distinct public-looking address per visitor, each of 65,536 visitors in a row in a /24 of its
    own (``net`` picks the first octet): people are spread over networks, and several clicks from one
    /24 on a new link are a mail scanner's (services/sharing/README.md). ``net`` is one of
    bench.redirect.PEOPLE_OCTETS, /8s outside the known datacenter ranges (``datacenter_range``).
    Only ever a header value."""
    return f"{net}.{(i >> 8) & 255}.{i & 255}.{7 + (i >> 16) % 2}"


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (httpx.HTTPError, AssertionError) as e:
            last = e
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")


@contextlib.asynccontextmanager
async def in_process(app: Any, what: str, bootstrap: str, database_url: str) -> AsyncIterator[tuple[Any, Any, Any]]:
    """``(runtime, producer, engine)``: the service ``app`` run in this process (its lifespan: API,
    consumers, workers) once its consumers have joined, a producer on ``bootstrap`` and an engine on
    its database for the test to use; all stopped on exit."""
    from advocacy_common.db import make_engine
    from advocacy_common.kafka import make_producer

    producer = make_producer(bootstrap)
    await producer.start()
    engine = make_engine(database_url)
    try:
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            await consumers_joined(runtime, what)
            yield runtime, producer, engine
    finally:
        await producer.stop()
        await engine.dispose()


async def consumers_joined(runtime: Any, what: str, timeout: float = 30) -> None:
    """Until every consumer of a service running in this process has joined its group (the worker
    boots in the background); ``timeout`` is a bound under load, not a speed claim."""
    deadline = time.monotonic() + timeout
    while not (runtime.consumers and all(c.connected for c in runtime.consumers)):
        assert time.monotonic() < deadline, f"{what} consumers did not start"
        await asyncio.sleep(0.05)


async def click(client: httpx.AsyncClient, code: str, visitor: int, *, net: int = 73) -> int:
    r = await client.get(
        f"/r/{code}",
        headers={
            "X-Forwarded-For": visitor_ip(visitor, net),
            "User-Agent": BROWSER_UAS[visitor % len(BROWSER_UAS)],
            "Accept-Language": ACCEPT_LANGUAGE,
        },
    )
    return r.status_code


async def send_clicks(
    base_url: str,
    plan: list[tuple[str, int]],
    *,
    concurrency: int = 32,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
    net: int = 73,
) -> list[int]:
    """GET /r/{code} for each (code, visitor) in ``plan``; returns the status codes in plan order."""
    statuses = [0] * len(plan)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as client:

        async def one(i: int) -> None:
            code, visitor = plan[i]
            statuses[i] = await click(client, code, visitor, net=net)

        await for_each_concurrently(len(plan), concurrency, one, on_progress=on_progress)
    return statuses


async def for_each_concurrently(
    count: int,
    concurrency: int,
    job: Callable[[int], Awaitable[None]],
    *,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """``job(i)`` for i in 0..count-1, at most ``concurrency`` at a time, taken in order;
    ``on_progress(done)`` after each."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    done = 0

    async def worker() -> None:
        nonlocal done
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await job(i)
            done += 1
            if on_progress is not None:
                await on_progress(done)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def token_for(
    keys: DevKeys,
    tenant: str,
    sub: str,
    role: str | list[str] = "employee",
    team: str | None = None,
    name: str | None = None,
    **kw: Any,
) -> str:
    """A JWT the services trust: ``role`` is one role or a list; ``kw`` goes to ``mint_token``."""
    roles = [role] if isinstance(role, str) else list(role)
    return mint_token(keys, tenant=tenant, sub=sub, roles=roles, team=team, name=name, **kw)
