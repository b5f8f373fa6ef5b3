"""Issue 4 acceptance through the four services: real crawler user agents earn nothing, real browsers
are counted, HEAD is never counted, the sharer's own click earns nothing (metrics and points agree).
Issue 21: a mail scanner's burst on a new link earns nothing, and an admin reads why."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import E2EStack
from tests.support.helpers import ACCEPT_LANGUAGE, eventually, visitor_ip

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


async def hit_all(
    base: str, requests: list[tuple[str, str, str, str]], concurrency: int = 32, language: str | None = ACCEPT_LANGUAGE
) -> list[int]:
    """(method, code, ip, user agent) each, with Accept-Language as a browser sends it unless ``language``
    is None; returns statuses in order."""
    lang = {"Accept-Language": language} if language is not None else {}
    out = [0] * len(requests)
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as c:

        async def one(i: int, method: str, code: str, ip: str, ua: str) -> None:
            async with sem:
                r = await c.request(method, f"/r/{code}", headers={"X-Forwarded-For": ip, "User-Agent": ua, **lang})
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
    plan = [("GET", crawler_code, visitor_ip(i, 73), ua) for i, ua in enumerate(crawlers)]
    plan += [("HEAD", crawler_code, visitor_ip(i, 12), CHROME) for i in range(50)]
    # every browser from a network of its own: people are spread over networks (a burst from one /24 on
    # a new link is a mail scanner's, the next test)
    plan += [("GET", browser_code, f"11.{i >> 8}.{i & 255}.7", ua) for i, ua in enumerate(browsers)]
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
    # metrics reports the clicks by verdict and reason (Plausible-style drop reasons): every bot click
    # of the crawler's link under the reason it was judged on, HEAD requests under head_request
    async with stack.client("metrics", stack.token(new_tenant, "admin-1", "admin")) as m:
        r = await m.get("/v1/metrics/summary", params={"group_by": "reason", "limit": 50})
        assert r.status_code == 200, r.text
    reasons = {i["key"] or "": i["clicks_by_verdict"] for i in r.json()["items"]}
    assert sum(v["bot"] for k, v in reasons.items() if k) == len(crawlers) + 50
    assert reasons["head_request"]["bot"] == 50 and reasons[""]["bot"] == 0
    assert any(k.startswith("known_crawler:") for k in reasons) and reasons[""]["counted"] == browsed["clicks"]

    async def points() -> dict[str, int] | None:
        p = await points_of(stack, new_tenant)
        return p if p.get("browsed", 0) >= 10 + browsed["clicks"] else None

    final = await eventually(points, timeout=15, interval=0.25, what="points reflect the clicks")
    assert final["crawled"] == 10  # the share only
    assert final["selfie"] == 10
    assert final["browsed"] == 10 + browsed["clicks"]


async def link_verdicts(stack: E2EStack, tenant: str, code: str) -> list[dict[str, Any]]:
    async with stack.client("sharing", stack.token(tenant, "admin-1", "admin")) as s:
        r = await s.get(f"/v1/links/{code}/verdicts")
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


async def test_a_mail_scanner_burst_earns_nothing_and_shows_its_reason(stack: E2EStack, new_tenant: str) -> None:
    content_id = await publish(stack, new_tenant)
    code = await share(stack, new_tenant, "mailed", content_id)
    # as the share is made: four addresses of one /24 open the link within a second, with a browser's
    # user agent (a mail security scanner following every link of the message)
    scanner = [("GET", code, f"203.0.113.{40 + i}", CHROME) for i in range(4)]
    assert await hit_all(stack.url("sharing"), scanner) == [302] * 4
    # a person on another network. (A minute later in the integration tier, whose redirect clock is
    # injected: tests/integration/test_sharing_pipeline.py; here the services keep their own clocks.)
    assert await hit_all(stack.url("sharing"), [("GET", code, "198.51.100.77", CHROME)]) == [302]

    async def settled() -> dict[str, Any] | None:
        m = await metrics_of(stack, new_tenant, "mailed")
        p = (await points_of(stack, new_tenant)).get("mailed", 0)
        verdicts = await link_verdicts(stack, new_tenant, code)
        scanned = sum(i["clicks"] for i in verdicts if "scanner_timing" in (i["reason"], i["taken_back"]))
        if m["clicks"] == 1 and p == 11 and scanned == 4:
            return {"metrics": m, "points": p, "verdicts": verdicts}
        return None

    final = await eventually(
        settled, timeout=30, interval=0.25, what="the burst judged and any counted part taken back"
    )
    assert final["points"] == 10 + 1  # the share, and the person's click only
    counted = [i for i in final["verdicts"] if i["verdict"] == "counted" and i["taken_back"] is None]
    assert counted == [{"verdict": "counted", "reason": None, "taken_back": None, "clicks": 1}]
    async with stack.client("sharing", stack.token(new_tenant, "someone", "employee")) as s:
        assert (await s.get(f"/v1/links/{code}/verdicts")).status_code == 403
    other = f"{new_tenant}-other"
    async with stack.client("sharing", stack.token(other, "admin-1", "admin")) as s:
        assert (await s.get(f"/v1/links/{code}/verdicts")).status_code == 404  # another tenant's link
        assert (await s.get("/v1/links/not-a-code!/verdicts")).status_code == 404


async def test_a_browser_without_accept_language_earns_nothing_and_shows_its_reason(
    stack: E2EStack, new_tenant: str
) -> None:
    content_id = await publish(stack, new_tenant)
    code = await share(stack, new_tenant, "unheaded", content_id)
    base = stack.url("sharing")
    # Chrome's user agent without Accept-Language (a scanner borrowing a browser's name), then the same
    # agent with it (a person); each from a network of its own
    assert await hit_all(base, [("GET", code, visitor_ip(1, 61), CHROME)], language=None) == [302]
    assert await hit_all(base, [("GET", code, visitor_ip(2, 61), CHROME)]) == [302]

    async def settled() -> dict[str, Any] | None:
        m = await metrics_of(stack, new_tenant, "unheaded")
        p = (await points_of(stack, new_tenant)).get("unheaded", 0)
        if sum(m["clicks_by_verdict"].values()) == 2 and p == 11:
            return {"metrics": m, "verdicts": await link_verdicts(stack, new_tenant, code)}
        return None

    final = await eventually(settled, timeout=30, interval=0.25, what="both clicks judged")
    assert final["metrics"]["clicks"] == 1 and final["metrics"]["clicks_by_verdict"]["bot"] == 1
    assert sorted(final["verdicts"], key=lambda i: str(i["verdict"])) == [
        {"verdict": "bot", "reason": "no_accept_language", "taken_back": None, "clicks": 1},
        {"verdict": "counted", "reason": None, "taken_back": None, "clicks": 1},
    ]
