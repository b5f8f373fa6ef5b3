"""The web console's sessions and forms under attack (issue 20): every state-changing route refuses a
request without the session's CSRF token, a login never keeps an id the browser brought (fixation),
logout ends the session on the server, and the cookies are HttpOnly and SameSite=Lax.

The console runs in-process; nothing here reaches a service (each attack is refused first, and a
service that would be called is an unroutable address, so a leak would show as a 502, not a pass).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from advocacy_common.auth.devkeys import DevKeys
from advocacy_console import admin_pages, employee_pages, pages
from advocacy_console.app import create_app
from advocacy_console.pages import LOGIN_COOKIE, SESSION_COOKIE
from advocacy_console.settings import ConsoleSettings

BASE = "http://127.0.0.1"
NOWHERE = "http://127.0.0.1:9"  # discard port: nothing answers


def settings(keys: DevKeys, **kw: object) -> ConsoleSettings:
    return ConsoleSettings(
        dev_mode=True,
        dev_keys_dir=Path(keys.private_path).parent,
        cookie_secure=False,
        content_url=NOWHERE,
        sharing_url=NOWHERE,
        metrics_url=NOWHERE,
        gamification_url=NOWHERE,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def console(dev_keys: DevKeys) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(dev_keys))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


async def login(client: httpx.AsyncClient, role: str = "employee") -> str:
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    r = await client.post(
        "/login/dev", data={"csrf": csrf.group(1), "tenant": "acme", "sub": "alice", "role": role, "team": "a"}
    )
    assert r.status_code == 303, r.text
    return client.cookies[SESSION_COOKIE]


async def session_csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/admin/content/new")  # a page that renders the session's token
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def post_routes() -> list[str]:
    """Every state-changing route of the console (a new form is covered without editing this test)."""
    return sorted(
        r.path
        for router in (pages.router, admin_pages.router, employee_pages.router)
        for r in router.routes
        if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
    )


async def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(console: httpx.AsyncClient) -> None:
    await login(console, "admin")
    routes = post_routes()
    assert {"/login/dev", "/logout", "/share", "/admin/content", "/wall/ticket"} <= set(routes)
    for path in routes:
        for data in ({}, {"csrf": "forged"}):
            r = await console.post(path, data={**data, "content_id": "c1", "network": "linkedin", "title": "x"})
            assert r.status_code == 403, (path, data, r.status_code, r.text)
    assert console.cookies.get(SESSION_COOKIE)  # still logged in: nothing above logged out


async def test_a_csrf_token_of_another_session_is_refused(dev_keys: DevKeys) -> None:
    app = create_app(settings(dev_keys))
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE) as victim,
        httpx.AsyncClient(transport=transport, base_url=BASE) as attacker,
    ):
        await login(victim, "admin")
        await login(attacker, "admin")
        forged = await session_csrf(attacker)
        r = await victim.post("/logout", data={"csrf": forged})
        assert r.status_code == 403
        r = await victim.post("/logout", data={"csrf": await session_csrf(victim)})
        assert r.status_code == 303


async def test_login_issues_a_new_session_id_whatever_the_browser_brought(console: httpx.AsyncClient) -> None:
    planted = await login(console)  # an id the attacker got, then planted in the victim's browser
    again = await login_with(console, planted)
    assert again != planted
    console.cookies.clear()
    console.cookies.set(SESSION_COOKIE, planted)
    r = await console.get("/board")
    assert r.status_code == 303 and r.headers["location"] == "/login"  # the planted id died at the login
    made_up = await login_with(console, "attacker-chosen-id")
    assert made_up != "attacker-chosen-id"


async def login_with(client: httpx.AsyncClient, planted: str) -> str:
    """Log in with ``planted`` as the session cookie the browser sends; the id the console gives."""
    client.cookies.clear()
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    client.cookies.set(SESSION_COOKIE, planted)
    r = await client.post("/login/dev", data={"csrf": csrf.group(1), "tenant": "acme", "sub": "bob", "role": "admin"})
    assert r.status_code == 303, r.text
    issued = next(v for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "="))
    return issued.split(";")[0].split("=", 1)[1]


async def test_logout_ends_the_session_on_the_server(console: httpx.AsyncClient) -> None:
    sid = await login(console, "admin")
    r = await console.post("/logout", data={"csrf": await session_csrf(console)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    console.cookies.set(SESSION_COOKIE, sid)  # a copy of the cookie kept by someone
    r = await console.get("/admin/content/new")
    assert r.status_code == 303 and r.headers["location"] == "/login"


async def test_the_login_form_needs_its_own_signed_nonce(console: httpx.AsyncClient) -> None:
    await console.get("/login")
    data = {"tenant": "acme", "sub": "mallory", "role": "admin"}
    for csrf in (None, "forged", console.cookies[LOGIN_COOKIE]):
        r = await console.post("/login/dev", data={**data, **({"csrf": csrf} if csrf else {})})
        assert r.status_code == 403 and SESSION_COOKIE not in console.cookies


async def test_cookies_are_httponly_and_samesite_lax(console: httpx.AsyncClient) -> None:
    page = await console.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = await console.post("/login/dev", data={"csrf": csrf.group(1), "tenant": "acme", "sub": "a", "role": "employee"})
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


async def test_dev_login_is_off_outside_dev_mode(dev_keys: DevKeys) -> None:
    app = create_app(settings(dev_keys).model_copy(update={"dev_mode": False}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        page = await client.get("/login")
        assert "Dev login" not in page.text
        r = await client.post("/login/dev", data={"tenant": "acme", "sub": "a", "role": "admin"})
        assert r.status_code == 404 and SESSION_COOKIE not in client.cookies


async def test_a_bad_login_field_is_a_422_with_a_message(console: httpx.AsyncClient) -> None:
    page = await console.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = await console.post("/login/dev", data={"csrf": csrf.group(1), "tenant": "../x", "sub": "a", "role": "root"})
    assert r.status_code == 422 and "tenant" in r.text
