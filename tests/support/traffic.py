"""Load generation with ground truth, and the checkers that compare it with what services report.

Content is announced by publishing ``content.published`` straight to the stack's broker (the
content service need not run), shares are made through sharing's API, clicks through ``/r/{code}``
with a distinct visitor per click (``X-Forwarded-For`` from loopback, which dev trusts) so every
answered 302 is a counted click.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from advocacy_common.events import new_event
from advocacy_common.events.content import ContentPublished
from advocacy_common.kafka import make_producer
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, for_each_concurrently
from tests.support.stackkit import PrivateStack


def visitor_ip(i: int) -> str:
    """A distinct public-looking address per visitor (up to 131,072 of them), each in a /24 of its own:
    people are spread over networks, and several clicks from one /24 on a new link are a mail
    scanner's (services/sharing/README.md); in /8s outside the known datacenter ranges (Comcast's,
    AT&T's: ``datacenter_range``). Only ever a header value."""
    return f"{(73, 12)[(i >> 16) % 2]}.{(i >> 8) & 255}.{i & 255}.7"


async def publish_content(bootstrap: str, tenant: str, content_ids: Sequence[str]) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for content_id in content_ids:
            env = new_event(
                "/advocacy/content",
                tenant,
                ContentPublished(
                    content_id=content_id,
                    title="Reliability",
                    url=f"https://example.com/{content_id}",
                    slug=content_id,
                    published_at=datetime.now(UTC),
                ),
            )
            await asyncio.wait_for(
                producer.send_and_wait(env.topic, env.value(), key=env.key.encode(), headers=env.headers()), 15
            )
    finally:
        await producer.stop()


@dataclass
class Truth:
    """What the load generator knows happened: per employee, shares made and clicks answered 302."""

    tenant: str
    codes: dict[str, str] = field(default_factory=dict)  # code -> employee
    shares: dict[str, int] = field(default_factory=dict)
    clicks: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def answered(self, status: int, employee: str | None, seconds: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(seconds)
        if status == 302 and employee is not None:
            self.clicks[employee] = self.clicks.get(employee, 0) + 1

    @property
    def total_clicks(self) -> int:
        return sum(self.clicks.values())


async def make_shares(
    s: PrivateStack, tenant: str, employees: Sequence[str], *, content_id: str | None = None, concurrency: int = 16
) -> Truth:
    """Publish one content item; each employee shares it once (waits for sharing to learn it)."""
    truth = Truth(tenant)
    content_id = content_id or f"c-{uuid.uuid4().hex[:8]}"
    await publish_content(s.bootstrap, tenant, [content_id])
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=s.url("sharing"), timeout=30, limits=limits) as c:

        async def one(emp: str) -> None:
            token = s.token(tenant, emp, "employee", team=f"team-{hash(emp) % 7}", name=emp)
            headers = {"Authorization": f"Bearer {token}"}

            async def attempt() -> str | None:
                async with sem:
                    r = await c.post(
                        "/v1/shares", json={"content_id": content_id, "network": "linkedin"}, headers=headers
                    )
                if r.status_code == 404:
                    return None
                assert r.status_code in (200, 201), r.text
                return str(r.json()["code"])

            code: str = await eventually(attempt, timeout=60, interval=0.3, what="sharing learns the content")
            truth.codes[code] = emp
            truth.shares[emp] = truth.shares.get(emp, 0) + 1

        await asyncio.gather(*(one(e) for e in employees))
    return truth


async def click_once(c: httpx.AsyncClient, code: str, visitor: int) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        r = await c.get(
            f"/r/{code}",
            headers={
                "X-Forwarded-For": visitor_ip(visitor),
                "User-Agent": BROWSER_UAS[visitor % len(BROWSER_UAS)],
                "Accept-Language": ACCEPT_LANGUAGE,
            },
        )
        status = r.status_code
    except httpx.HTTPError:
        status = 0
    return status, time.perf_counter() - start


async def drive_clicks(
    base_url: str,
    truth: Truth,
    plan: Sequence[str],
    *,
    concurrency: int = 32,
    first_visitor: int = 0,
    rate: float | None = None,
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """One click per entry of ``plan`` (a code), each from a new visitor; ``rate`` caps clicks/s."""
    start = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as c:

        async def one(i: int) -> None:
            if rate is not None:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            code = plan[i]
            status, seconds = await click_once(c, code, first_visitor + i)
            truth.answered(status, truth.codes.get(code), seconds)

        await for_each_concurrently(len(plan), concurrency, one, on_progress=on_progress)


# -- what the services report -----------------------------------------------------------------------
async def metrics_clicks(
    s: PrivateStack, tenant: str, employees: Sequence[str], concurrency: int = 16
) -> dict[str, int]:
    token = s.token(tenant, "admin", "admin")
    out: dict[str, int] = {}
    sem = asyncio.Semaphore(concurrency)
    async with s.client("metrics", token, limits=httpx.Limits(max_connections=concurrency)) as c:

        async def one(emp: str) -> None:
            async with sem:
                r = await c.get(f"/v1/metrics/employees/{emp}")
            assert r.status_code == 200, r.text
            out[emp] = int(r.json()["clicks_by_verdict"]["counted"])

        await asyncio.gather(*(one(e) for e in employees))
    return out


async def leaderboard_points(s: PrivateStack, tenant: str) -> dict[str, int]:
    """employee -> points, every page of the all-time board."""
    token = s.token(tenant, "admin", "admin")
    out: dict[str, int] = {}
    cursor = None
    async with s.client("gamification", token) as c:
        while True:
            params: dict[str, Any] = {"window": "all", "limit": 200}
            if cursor:
                params["cursor"] = cursor
            r = await c.get("/v1/leaderboard", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            for item in body["items"]:
                out[item["employee_id"]] = int(item["points"])
            cursor = body.get("next_cursor")
            if not cursor:
                return out


async def wait_exact(
    check: Callable[[], Awaitable[dict[str, int]]], want: dict[str, int], *, timeout: float, what: str
) -> float:
    """Poll until ``check()`` equals ``want``; returns the seconds it took. On time-out the assertion
    names the employees that differ."""
    start = time.monotonic()
    last: dict[str, int] = {}
    while time.monotonic() - start < timeout:
        try:
            last = await check()
        except (httpx.HTTPError, AssertionError):
            last = {}
        if last == want:
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    diff = {k: (want.get(k), last.get(k)) for k in set(want) | set(last) if want.get(k) != last.get(k)}
    raise AssertionError(
        f"{what}: not exact after {timeout}s; (want, got) for {len(diff)}: {dict(list(diff.items())[:10])}"
    )


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")


async def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """A process's /metrics as (name, labels, value) samples."""
    async with httpx.AsyncClient(timeout=10) as c:
        text = (await c.get(url + "/metrics")).text
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
