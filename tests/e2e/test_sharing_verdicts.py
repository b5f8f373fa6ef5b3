"""Issue 4 acceptance through the four services: real crawler user agents earn nothing, real browsers
are counted, HEAD is never counted, the sharer's own click earns nothing (metrics and points agree)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually, visitor_ip

CORPORA = Path(__file__).parents[1] / "fixtures" / "useragents"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def corpus(name: str) -> list[str]:
    return [line for line in (CORPORA / name).read_text().splitlines() if line.strip()]


async def publish(stack: E2EStack, tenant: str) -> str:
    admin = stack.token(tenant, "admin-1", "admin")
    async with stack.client("content", admin) as content:
        r = await content.post("/v1/content", json={"title": "Corpus day", "url": "https://example.com/corpus"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def share(stack: E2EStack, tenant: str, sub: str, content_id: str, headers: dict[str, str] | None = None) -> str:
    token = stack.token(tenant, sub, "employee", team="t", name=sub)
    async with stack.client("sharing", token) as sharing:

        async def attempt() -> str | None:
            r = await sharing.post(
                "/v1/shares", json={"content_id": content_id, "network": "linkedin"}, headers=headers or {}
            )
            if r.status_code == 404:
                return None
            assert r.status_code == 201, r.text
            return str(r.json()["code"])

        code: str = await eventually(attempt, timeout=15, what="sharing learns the content")
        return code


async def hit_all(base: str, requests: list[tuple[str, str, str, str]], concurrency: int = 32) -> list[int]:
    """(method, code, ip, user agent) each; returns statuses in order."""
    out = [0] * len(requests)
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as c:

        async def one(i: int, method: str, code: str, ip: str, ua: str) -> None:
            async with sem:
                r = await c.request(method, f"/r/{code}", headers={"X-Forwarded-For": ip, "User-Agent": ua})
                out[i] = r.status_code

        await asyncio.gather(*(one(i, *req) for i, req in enumerate(requests)))
    return out


async def metrics_of(stack: E2EStack, tenant: str, sub: str) -> dict[str, Any]:
    async with stack.client("metrics", stack.token(tenant, "admin-1", "admin")) as m:
        r = await m.get(f"/v1/metrics/employees/{sub}")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def points_of(stack: E2EStack, tenant: str) -> dict[str, int]:
    async with stack.client("gamification", stack.token(tenant, "admin-1", "admin")) as g:
        r = await g.get("/v1/leaderboard", params={"window": "all", "limit": 200})
        assert r.status_code == 200, r.text
        return {i["employee_id"]: i["points"] for i in r.json()["items"]}


async def test_crawlers_earn_nothing_browsers_count_head_and_self_do_not(stack: E2EStack, new_tenant: str) -> None:
    content_id = await publish(stack, new_tenant)
    crawler_code = await share(stack, new_tenant, "crawled", content_id)
    browser_code = await share(stack, new_tenant, "browsed", content_id)
    # the sharer creates the share from their own browser, then clicks their own link
    self_code = await share(
        stack, new_tenant, "selfie", content_id, headers={"X-Forwarded-For": "203.0.113.77", "User-Agent": CHROME}
    )
    # every third of the 2,123 crawlers (the unit test judges all of them) and every preview fetcher
    crawlers = corpus("crawlers.txt")[::3] + corpus("previews.txt")
    browsers = corpus("browsers.txt")
    plan = [("GET", crawler_code, visitor_ip(i, 18), ua) for i, ua in enumerate(crawlers)]
    plan += [("HEAD", crawler_code, visitor_ip(i, 20), CHROME) for i in range(50)]
    plan += [("GET", browser_code, visitor_ip(i, 22), ua) for i, ua in enumerate(browsers)]
    plan += [("GET", self_code, "203.0.113.77", CHROME)]
    statuses = await hit_all(stack.url("sharing"), plan)
    assert statuses.count(302) == len(plan)

    async def settled() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        c, b, s = [await metrics_of(stack, new_tenant, sub) for sub in ("crawled", "browsed", "selfie")]
        total = sum(c["clicks_by_verdict"].values()) + sum(b["clicks_by_verdict"].values())
        if total < len(plan) - 1 or sum(s["clicks_by_verdict"].values()) < 1:
            return None
        return c, b, s

    crawled, browsed, selfie = await eventually(settled, timeout=30, interval=0.25, what="every click judged")
    assert crawled["clicks"] == 0
    assert crawled["clicks_by_verdict"]["bot"] == len(crawlers) + 50
    assert browsed["clicks"] >= 0.99 * len(browsers)
    assert selfie["clicks"] == 0 and selfie["clicks_by_verdict"]["self"] == 1

    async def points() -> dict[str, int] | None:
        p = await points_of(stack, new_tenant)
        return p if p.get("browsed", 0) >= 10 + browsed["clicks"] else None

    final = await eventually(points, timeout=15, interval=0.25, what="points reflect the clicks")
    assert final["crawled"] == 10  # the share only
    assert final["selfie"] == 10
    assert final["browsed"] == 10 + browsed["clicks"]
