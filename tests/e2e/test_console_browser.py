"""Issue 20, first slices: the web console in a real headless Chromium against the real services.

The stack is private (its own broker and databases) because the gamification API must allow the
console's origin (CORS) for the wall's stream, which goes from the browser straight to it. The story:
an admin publishes for team A through the dev login; an employee of team A sees the item and shares
it (the share intent is intercepted: it carries the tracked link); an employee of team B never sees
it; a click on the tracked link moves the wall's leaderboard, live, without a reload. axe-core finds
no serious or critical WCAG violation on any page; every page is photographed at desktop and phone
width (test-artifacts/console/, git-ignored); `make screenshots` also writes the README's board and
wall images into docs/images/ (README_SCREENSHOTS=1).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.processes import ServiceProcess
from tests.support import browser
from tests.support.helpers import ACCEPT_LANGUAGE, BROWSER_UAS, eventually, visitor_ip
from tests.support.oidc_provider import TestProvider, User, serve
from tests.support.processes import own_tansu
from tests.support.stackkit import PrivateStack

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres

SERVICES = ("content", "sharing", "metrics", "gamification")
INTENT_HOST = "www.linkedin.com"


@dataclass
class ConsoleStack:
    services: PrivateStack
    console: ServiceProcess
    idp: TestProvider

    @property
    def url(self) -> str:
        return self.console.url


@pytest.fixture(scope="module")
def console_stack(
    pg: EmbeddedPostgres | ExternalPostgres, dev_keys: DevKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleStack]:
    why = browser.missing_tools()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    root = tmp_path_factory.mktemp("console")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    # the company's identity provider: the services trust it (AUTH_ISSUERS, keycloak preset) beside
    # the dev issuer; the console logs in through it (code + PKCE) and keeps sessions in its own table
    idp = TestProvider(redirect_uris=[f"{origin}/login/oidc/callback"], tenant=f"oidc-{uuid.uuid4().hex[:10]}")
    idp.users = {"olga": User("olga", "employee", "Olga O.")}
    with own_tansu(root) as tansu, serve(idp):
        trusted = json.dumps([idp.auth_issuer()])
        services = PrivateStack(
            server_url=pg.server_url,
            bootstrap=tansu.bootstrap,
            keys=dev_keys,
            data_dir=root / "stack",
            services=SERVICES,
            partitions=2,
            extra_env={
                svc: {
                    "AUTH_ISSUERS": trusted,
                    # the wall's stream and the board's share go from the browser to these two directly
                    **({"CORS_ORIGINS": json.dumps([origin])} if svc in ("gamification", "sharing") else {}),
                }
                for svc in SERVICES
            },
        )
        console = ServiceProcess(
            "console",
            port,
            {
                "CONSOLE_PORT": str(port),
                **{f"CONSOLE_{svc.upper()}_URL": services.url(svc) for svc in SERVICES},
                "CONSOLE_DEV_MODE": "true",
                "CONSOLE_DEV_KEYS_DIR": str(dev_keys.private_path.parent),
                "CONSOLE_COOKIE_SECURE": "false",
                "CONSOLE_DATABASE_URL": pg.create_database("console_browser"),
                "CONSOLE_AUTH_ISSUER": json.dumps(idp.auth_issuer()),
                "CONSOLE_OIDC_CLIENT_ID": idp.client_id,
                "CONSOLE_OIDC_REDIRECT_URL": f"{origin}/login/oidc/callback",
                "CONSOLE_OIDC_POST_LOGOUT_REDIRECT_URL": f"{origin}/login",
            },
            root / "console.log",
            command=[sys.executable, "-m", "advocacy_console", "serve"],
        )
        try:
            services.prepare_and_start()
            console.start()
            console.wait_ready(30)
            yield ConsoleStack(services, console, idp)
        finally:
            console.terminate()
            services.stop()


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(browser.CHROMIUM), args=browser.launch_args())
        try:
            yield b
        finally:
            await b.close()


async def logged_in(chromium: Any, base: str, tenant: str, sub: str, role: str, team: str, name: str) -> Any:
    # bypass_csp: axe-core is injected as a script the console's policy would (rightly) refuse
    context = await chromium.new_context(base_url=base, viewport=browser.DESKTOP, bypass_csp=True)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("#tenant", tenant)
    await page.fill("#sub", sub)
    await page.fill("#name", name)
    await page.fill("#team", team)
    await page.select_option("#role", role)
    await page.click("form[action='/login/dev'] button[type=submit]")
    await page.wait_for_load_state()
    return page


async def diagnose(console_stack: ConsoleStack, tenant: str, wall: Any) -> dict[str, Any]:
    admin = console_stack.services.token(tenant, "admin-1", "admin")
    out: dict[str, Any] = {"wall": await wall.inner_text("#board"), "live": await wall.inner_text("#live")}
    async with console_stack.services.client("gamification", admin) as g:
        out["board"] = (await g.get("/v1/leaderboard", params={"window": "week"})).json()
    async with console_stack.services.client("metrics", admin) as m:
        out["alice"] = (await m.get("/v1/metrics/employees/alice")).json()
    return out


async def check_page(page: Any, name: str) -> None:
    violations = await browser.serious_violations(page)
    assert violations == [], f"{name}: {violations}"
    await browser.screenshots(page, name)


async def test_publish_share_and_watch_the_wall_move(
    console_stack: ConsoleStack, chromium: Any, new_tenant: str
) -> None:
    base = console_stack.url
    title = f"Team A launch {new_tenant}"

    # the login page itself
    context = await chromium.new_context(base_url=base, viewport=browser.DESKTOP, bypass_csp=True)
    login = await context.new_page()
    await login.goto("/login")
    await check_page(login, "login")
    await context.close()

    # an admin publishes for team A
    admin = await logged_in(chromium, base, new_tenant, "admin-1", "admin", "hq", "Ada Admin")
    assert urlsplit(admin.url).path == "/admin/content/new"
    await check_page(admin, "publish")
    await admin.fill("#title", title)
    await admin.fill("#url", "https://example.com/launch")
    await admin.fill("#teams", "team-a")
    await admin.fill("#caption_linkedin", "Proud of what we built")
    await admin.click("form[action='/admin/content'] button[type=submit]")
    await admin.wait_for_url(f"{base}/board")
    assert "is published" in await admin.inner_text("main")

    # an employee of team A sees it and shares it; the share intent is intercepted
    alice = await logged_in(chromium, base, new_tenant, "alice", "employee", "team-a", "Alice A.")
    assert title in await alice.inner_text("main")
    await check_page(alice, "board")
    await browser.readme_image(alice, "board")
    intents: list[str] = []

    async def intercept(route: Any) -> None:
        # the console answers the share with a redirect to the network's share dialog: keep its
        # address and show a stand-in, so no test ever reaches the network
        answer = await route.fetch(max_redirects=0)
        location = answer.headers.get("location", "")
        if urlsplit(location).hostname == INTENT_HOST:
            intents.append(location)
            await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>LinkedIn</title>")
        else:
            await route.fulfill(response=answer)  # "not yet": back to the board

    async def dialog(route: Any) -> None:
        # the board's script shares at sharing itself and opens the dialog: kept, never reached
        intents.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>LinkedIn</title>")

    await alice.route(f"{base}/share", intercept)
    await alice.route(f"https://{INTENT_HOST}/**", dialog)
    direct: list[int] = []  # sharing's answers to the browser's own share (with a ticket, no token)
    alice.on("response", lambda r: direct.append(r.status) if r.url.endswith("/v1/shares/with-ticket") else None)
    card = alice.locator("article", has_text=title)
    assert await card.locator("textarea").input_value() == "Proud of what we built"
    # policy feedback while editing (htmx -> the console -> content's POST /v1/policy/check)
    await card.locator("textarea").fill("Proud of what we built!")
    await alice.wait_for_function(
        "[...document.querySelectorAll('.policy')].some(p => p.textContent.includes('23 of 3000 characters'))",
        timeout=10_000,
    )
    deadline = time.monotonic() + 20
    while not intents:  # sharing learns the content from content's event within moments
        assert time.monotonic() < deadline, await alice.inner_text("main")
        await alice.evaluate("window.__shareClicked = true")
        await card.get_by_role("button", name=re.compile("Share on LinkedIn")).click()
        # in flight: the script's two calls, then the dialog, or (not yet) the classic form's way back
        # to a fresh board; never click again before one of them
        while not intents and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            try:
                fresh = await alice.evaluate("window.__shareClicked !== true")
            except Exception:  # navigating
                continue
            if fresh and urlsplit(alice.url).path == "/board":
                await alice.wait_for_load_state()
                break
    assert 201 in direct, direct  # the share went from the browser to sharing, with a ticket
    intent = urlsplit(intents[0])
    assert intent.hostname == INTENT_HOST
    text = unquote(parse_qs(intent.query)["text"][0])
    sharing = console_stack.services.url("sharing")
    found = re.search(re.escape(sharing) + r"/r/([A-Za-z0-9_-]+)", text)
    assert found, text
    assert text.startswith("Proud of what we built")
    code = found.group(1)

    # an employee of team B never sees it
    bob = await logged_in(chromium, base, new_tenant, "bob", "employee", "team-b", "Bob B.")
    assert title not in await bob.inner_text("main")
    assert await bob.locator("article").count() == 0

    # the wall: live over SSE from gamification; a click on the tracked link moves it without reload
    wall = await alice.context.new_page()
    await wall.goto("/wall")
    await wall.wait_for_function("document.getElementById('live').dataset.state === 'live'", timeout=15_000)
    alice_points = "r => r.dataset.employee === 'alice'"
    await wall.wait_for_function(
        f"[...document.querySelectorAll('#board tbody tr')].some(r => ({alice_points})(r) && "
        "r.querySelector('.points').textContent === '10')",
        timeout=15_000,
    )  # her share
    await check_page(wall, "wall")
    await wall.evaluate("window.__notReloaded = true")
    # a person opens the link in the real Chromium: its own navigation headers (Accept-Language among
    # them: a click without it is a no_accept_language bot), a desktop Chrome's user agent (headless
    # Chromium names itself HeadlessChrome, a known crawler) and a visitor's address. The request to
    # sharing is not intercepted (an intercepted one lacks the headers the network stack adds); the
    # 302's destination is, through the DevTools protocol (Playwright routes no redirect's target),
    # so no test reaches it
    reader = await chromium.new_context(
        user_agent=BROWSER_UAS[0], extra_http_headers={"X-Forwarded-For": visitor_ip(1, 36)}
    )
    page = await reader.new_page()
    cdp = await reader.new_cdp_session(page)
    stand_in = base64.b64encode(b"<!doctype html><title>x</title>").decode()
    pending: list[asyncio.Future[Any]] = []

    def fulfil(event: dict[str, Any]) -> None:
        pending.append(
            asyncio.ensure_future(
                cdp.send(
                    "Fetch.fulfillRequest",
                    {
                        "requestId": event["requestId"],
                        "responseCode": 200,
                        "responseHeaders": [{"name": "Content-Type", "value": "text/html"}],
                        "body": stand_in,
                    },
                )
            )
        )

    cdp.on("Fetch.requestPaused", fulfil)
    await cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "https://example.com/*"}]})
    async with page.expect_response(lambda r: "/r/" in r.url) as answered:
        await page.goto(f"{sharing}/r/{code}")
    response = await answered.value
    assert response.status == 302
    assert "accept-language" in await response.request.all_headers()
    await asyncio.gather(*pending)
    await reader.close()
    try:
        await wall.wait_for_function(
            f"[...document.querySelectorAll('#board tbody tr')].some(r => ({alice_points})(r) && "
            "r.querySelector('.points').textContent === '11')",
            timeout=10_000,
        )
    except Exception as e:
        raise AssertionError(f"the wall did not move: {await diagnose(console_stack, new_tenant, wall)}") from e
    assert await wall.evaluate("window.__notReloaded === true")
    await browser.screenshots(wall, "wall-after-click")
    await browser.readme_image(wall, "wall")

    # a dropped stream (gamification restarts): the wall reconnects with a fresh ticket by itself
    console_stack.services.process("gamification").restart()
    async with httpx.AsyncClient(base_url=sharing, timeout=10) as visitor:
        r = await visitor.get(
            f"/r/{code}",
            headers={
                "X-Forwarded-For": visitor_ip(2, 36),
                "User-Agent": BROWSER_UAS[1],
                "Accept-Language": ACCEPT_LANGUAGE,
            },
        )
        assert r.status_code == 302
    await wall.wait_for_function(
        f"[...document.querySelectorAll('#board tbody tr')].some(r => ({alice_points})(r) && "
        "r.querySelector('.points').textContent === '12')",
        timeout=30_000,
    )
    assert await wall.evaluate("window.__notReloaded === true")

    # her results: two counted clicks, one share, first place
    deadline = time.monotonic() + 15
    while True:  # metrics counts the click from its own consumer, moments after gamification
        await alice.goto("/me")
        shown = [await alice.inner_text(f"#{k}") for k in ("rank", "points", "shares", "clicks")]
        if shown == ["1", "12", "1", "2"] or time.monotonic() > deadline:
            break
        await alice.wait_for_timeout(300)
    assert shown == ["1", "12", "1", "2"]
    await check_page(alice, "my-results")
    await alice.goto("/rewards")
    assert await alice.inner_text("#balance") == "12"
    await check_page(alice, "rewards")

    # the admin's analytics: the chart (Chart.js) holds the two clicks; the CSV export relays
    await admin.goto("/admin/analytics")
    assert await admin.inner_text("#total-clicks") == "2"
    charted = "Chart.getChart('clicks-by-day').data.datasets[0].data.reduce((a, b) => a + b, 0)"
    await admin.wait_for_function(f"typeof Chart !== 'undefined' && {charted} === 2", timeout=5_000)
    by_network = "Chart.getChart('clicks-by-network').data"
    await admin.wait_for_function(f"{by_network}.datasets[0].data.reduce((a, b) => a + b, 0) === 2", timeout=5_000)
    assert await admin.evaluate(f"{by_network}.labels") == ["LinkedIn"]
    await check_page(admin, "analytics")
    csv = await admin.context.request.get(f"{base}/admin/analytics/export.csv?group_by=network")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "linkedin" in await csv.text()
    refused = await alice.context.request.get(f"{base}/admin/analytics/export.csv")
    assert refused.status == 403
    # issue 20's later analytics: the top lists, ROI and adoption, a CSV of the ROI table
    assert title in await admin.inner_text("#top-content-table")
    assert "alice" in await admin.inner_text("#top-advocates-table")
    roi = await admin.context.request.get(f"{base}/admin/analytics/roi.csv")
    assert roi.status == 200 and (await roi.text()).startswith("measure,amount,currency")
    assert Path(browser.ARTIFACTS / "board-phone.png").stat().st_size > 0


async def test_the_editor_queue_rules_challenges_and_coaching(
    console_stack: ConsoleStack, chromium: Any, new_tenant: str
) -> None:
    """The admin schedules content with targeting and captions (the live policy check refuses a
    too long X caption, then accepts it), edits it, approves and rejects suggestions from the queue,
    simulates a points rule as a before/after table; an employee follows a challenge and asks a
    coach, who answers in the thread. axe-core and screenshots on each page."""
    base, stack = console_stack.url, console_stack.services
    admin = await logged_in(chromium, base, new_tenant, "admin-1", "admin", "hq", "Ada Admin")
    title = f"Scheduled {new_tenant}"

    # the editor: scheduling, targeting, captions per network with the live policy check
    await admin.fill("#title", title)
    await admin.fill("#url", "https://example.com/later")
    await admin.fill("#teams", "team-a")
    await admin.fill("#departments", "Sales, Marketing")
    await admin.fill("#locations", "Berlin")
    await admin.check("#role_champion")
    await admin.fill("#publish_at", "2031-01-15T09:30")
    await admin.fill("#caption_x", "x" * 300)
    await admin.wait_for_function(
        "document.getElementById('policy-x').textContent.includes('Breaks the policy')", timeout=10_000
    )
    await admin.fill("#caption_x", "Coming soon")
    await admin.wait_for_function(
        "document.getElementById('policy-x').textContent.includes('Fits the policy')", timeout=10_000
    )
    await check_page(admin, "editor")
    await admin.click("form[action='/admin/content'] button[type=submit]")
    await admin.wait_for_url(f"{base}/board")
    assert "is scheduled" in await admin.inner_text("main")
    await admin.goto("/admin/content?status=scheduled")
    await check_page(admin, "content-list")
    await admin.get_by_role("link", name=title).click()
    await admin.wait_for_load_state()
    assert await admin.input_value("#publish_at") == "2031-01-15T09:30"
    assert await admin.input_value("#departments") == "Sales, Marketing"
    assert await admin.is_checked("#role_champion") and not await admin.is_checked("#role_sharer")
    await check_page(admin, "content-edit")
    await admin.fill("#title", title + " (edited)")
    await admin.click("form.editor button[type=submit]")
    await admin.wait_for_load_state()
    assert f"Saved: “{title} (edited)” is scheduled." in await admin.inner_text("main")

    # the approval queue: one suggestion approved, one rejected with a reason
    alice_token = stack.token(new_tenant, "alice", "employee", team="team-a", name="Alice A.")
    suggested = []
    async with stack.client("content", alice_token) as c:
        for name in ("Good idea", "Weak idea"):
            r = await c.post(
                "/v1/content/suggestions", json={"title": f"{name} {new_tenant}", "url": "https://example.com/i"}
            )
            assert r.status_code == 201, r.text
            suggested.append(r.json()["id"])
    await admin.goto("/admin/suggestions")
    await check_page(admin, "approval-queue")
    good = admin.locator("article", has_text=f"Good idea {new_tenant}")
    await good.get_by_role("button", name=re.compile("^Approve")).click()
    await admin.wait_for_load_state()
    assert "is published" in await admin.inner_text(".flash")
    weak = admin.locator("article", has_text=f"Weak idea {new_tenant}")
    await weak.get_by_label("Reason to reject").fill("Off topic this month")
    await weak.get_by_role("button", name=re.compile("^Reject")).click()
    await admin.wait_for_load_state()
    assert "is rejected" in await admin.inner_text(".flash")
    assert await admin.locator("article").count() == 0
    async with stack.client("content", alice_token) as c:
        mine = (await c.get("/v1/content/suggestions", params={"status": "all"})).json()["items"]
        assert [s["rejection_reason"] for s in mine if s["id"] == suggested[1]] == ["Off topic this month"]

    # alice shares the approved item: 15 points for the approved suggestion and 10 for the share, so
    # the simulation has a before and an after
    async def shared() -> bool:
        async with stack.client("sharing", alice_token) as s:
            r = await s.post("/v1/shares", json={"content_id": suggested[0], "network": "linkedin"})
            return r.status_code == 201

    await eventually(shared, timeout=20, interval=0.3, what="alice's share")

    async def ten_points() -> bool:
        async with stack.client("gamification", alice_token) as g:
            return (await g.get("/v1/points/me")).json().get("balance") == 25

    await eventually(ten_points, timeout=20, interval=0.3, what="alice's share points")
    await admin.goto("/admin/rules")
    await check_page(admin, "rules")
    await admin.fill("#points_share", "25")
    await admin.get_by_role("button", name="Simulate").click()
    await admin.wait_for_load_state()
    row = admin.locator("#simulation tbody tr", has_text="alice")
    assert [await c.inner_text() for c in await row.locator("td").all()][2:] == ["1", "1", "same", "25", "40", "+15"]
    await check_page(admin, "rules-simulated")
    async with stack.client("gamification", stack.token(new_tenant, "admin-1", "admin")) as g:
        assert (await g.get("/v1/rules")).json()["points"]["share"] == 10  # a simulation saves nothing
    await admin.get_by_role("button", name="Save as the new rules").click()
    await admin.wait_for_load_state()
    assert "Rules saved: version" in await admin.inner_text(".flash")
    assert await admin.input_value("#points_share") == "25"
    async with stack.client("gamification", stack.token(new_tenant, "admin-1", "admin")) as g:
        saved = (await g.get("/v1/rules")).json()
        assert saved["points"]["share"] == 25 and saved["points"]["conversion"]["sale"] == 50

    # challenges: the list and one challenge's progress
    now = time.time()
    async with stack.client("gamification", stack.token(new_tenant, "admin-1", "admin")) as g:
        r = await g.post(
            "/v1/challenges",
            json={
                "name": f"December push {new_tenant}",
                "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
                "ends_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86400)),
                "goal": {"kind": "threshold", "value": 50},
            },
        )
        assert r.status_code == 201, r.text
    alice = await logged_in(chromium, base, new_tenant, "alice", "employee", "team-a", "Alice A.")
    await alice.goto("/challenges")
    await check_page(alice, "challenges")
    await alice.get_by_role("link", name=f"December push {new_tenant}").click()
    await alice.wait_for_load_state()
    assert "Reach 50 points" in await alice.inner_text("main")
    await check_page(alice, "challenge")

    # coaching: alice asks, a coach answers in the thread, alice reads the answer
    await alice.goto("/coaching")
    await check_page(alice, "coaching")
    await alice.select_option("#network", "x")
    await alice.fill("#draft", "Our launch is live!")
    await alice.fill("#question", "Too salesy?")
    await alice.get_by_role("button", name="Ask").click()
    await alice.wait_for_url(re.compile(rf"{re.escape(base)}/coaching/[A-Za-z0-9_-]+$"))
    thread = alice.url
    coach = await logged_in(chromium, base, new_tenant, "coach-1", "coach", "hq", "Cora Coach")
    await coach.goto(thread)
    await coach.fill("#text", "Add one line on why it matters to you.")
    await coach.get_by_role("button", name="Reply").click()
    await coach.wait_for_load_state()
    assert "Reply sent." in await coach.inner_text(".flash")
    await alice.goto(thread)
    assert "why it matters to you" in await alice.inner_text(".replies")
    await check_page(alice, "coaching-thread")


async def test_oidc_login_through_the_company_provider(console_stack: ConsoleStack, chromium: Any) -> None:
    """Code + PKCE in the real Chromium: the console's button, the provider's sign-in page, the
    callback; the services accept the provider's token (My results loads); logout ends at the provider."""
    base, idp = console_stack.url, console_stack.idp
    context = await chromium.new_context(base_url=base, viewport=browser.DESKTOP, bypass_csp=False)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_role("button", name="Log in with your company account").click()
    await page.wait_for_url(f"{idp.url}/authorize?*")
    await page.fill("#username", "olga")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/board")
    exchange = idp.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    await page.goto("/me")  # metrics and gamification, with the provider's access token
    assert "Olga O." in await page.inner_text("header")
    assert await page.locator("#rank").count() == 1, await page.inner_text("main")
    await page.click("form.logout button[type=submit]")
    await page.wait_for_url(f"{base}/login")
    assert idp.logouts and idp.logouts[-1].get("id_token_hint")
    await page.goto("/board")
    assert urlsplit(page.url).path == "/login"  # the session ended on the server
    await context.close()
