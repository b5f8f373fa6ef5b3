"""The web console's sessions and forms under attack (issue 20): every state-changing route refuses a
request without the session's CSRF token, a login never keeps an id the browser brought (fixation),
logout ends the session on the server, and the cookies are HttpOnly and SameSite=Lax. The OpenID
Connect login (code + PKCE, against the local test provider of tests/support/oidc_provider.py)
refuses a callback of another login (state), a replayed code, a token of another nonce; sessions live
in the console's table (a second replica, or a restarted one, knows them) and are bounded per person.

The console runs in-process on its own database of the session PostgreSQL; nothing here reaches a
service (each attack is refused first, and a service that would be called is an unroutable address,
so a leak would show as a 502, not a pass).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from advocacy_common.auth.devkeys import DevKeys
from advocacy_console import admin_pages, employee_pages, oidclogin, pages, sessiondb
from advocacy_console.app import create_app
from advocacy_console.pages import LOGIN_COOKIE, SESSION_COOKIE
from advocacy_console.settings import ConsoleSettings
from tests.support.oidc_provider import TestProvider, User, serve

if TYPE_CHECKING:
    from advocacy_dev.devstack.postgres import EmbeddedPostgres, ExternalPostgres

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


@pytest.fixture(scope="module")
def console_db(pg: EmbeddedPostgres | ExternalPostgres) -> str:
    return pg.create_database("console_security")


@pytest.fixture(scope="module")
def provider() -> Iterator[TestProvider]:
    idp = TestProvider(redirect_uris=[f"{BASE}/login/oidc/callback"], tenant="oidc-acme")
    idp.users = {"olga": User("olga", "admin", "Olga O."), "emil": User("emil", "employee")}
    with serve(idp):
        yield idp


def oidc_settings(keys: DevKeys, provider: TestProvider, database_url: str, **kw: object) -> ConsoleSettings:
    return settings(
        keys,
        database_url=database_url,
        auth_issuer=json.dumps(provider.auth_issuer()),
        oidc_client_id=provider.client_id,
        oidc_redirect_url=f"{BASE}/login/oidc/callback",
        oidc_post_logout_redirect_url=f"{BASE}/login",
        secret_key="a-secret-both-replicas-share-0123456789",
        **kw,
    )


async def started(app: FastAPI) -> FastAPI:
    """The app after what its lifespan does first (ASGITransport runs no lifespan): the table migrated."""
    url = app.state.settings.database_url
    if url:
        await sessiondb.migrate(url)
    return app


@pytest.fixture
async def console(dev_keys: DevKeys, provider: TestProvider, console_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = await started(create_app(oidc_settings(dev_keys, provider, console_db)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client
    await app.state.sessions.close()


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
        for router in (pages.router, admin_pages.router, employee_pages.router, oidclogin.router)
        for r in router.routes
        if isinstance(r, APIRoute) and r.methods & {"POST", "PUT", "PATCH", "DELETE"}
    )


async def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(console: httpx.AsyncClient) -> None:
    await login(console, "admin")
    routes = post_routes()
    assert {"/login/dev", "/login/oidc", "/logout", "/share", "/wall/ticket"} <= set(routes)
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


# -- OpenID Connect: code + PKCE against the local test provider ----------------------------------------
async def oidc_authorize(client: httpx.AsyncClient, provider: TestProvider, username: str) -> str:
    """Start an OIDC login at the console and sign in at the provider; the callback URL it answers."""
    page = await client.get("/login")
    csrf = re.search(r'action="/login/oidc">\s*<input type="hidden" name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    r = await client.post("/login/oidc", data={"csrf": csrf.group(1)})
    assert r.status_code == 303, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(provider.url + "/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    async with httpx.AsyncClient() as browser_at_idp:
        answer = await browser_at_idp.get(f"{authorize}&username={username}")
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def oidc_login(client: httpx.AsyncClient, provider: TestProvider, username: str) -> httpx.Response:
    callback = await oidc_authorize(client, provider, username)
    return await client.get(callback.removeprefix(BASE))


async def logged_in_as(client: httpx.AsyncClient) -> bool:
    r = await client.get("/login")  # a live session is sent on to the board
    return r.status_code == 303 and r.headers["location"] == "/board"


async def test_oidc_login_with_pkce_maps_the_person_as_the_services_do(
    console: httpx.AsyncClient, provider: TestProvider
) -> None:
    console.cookies.set(SESSION_COOKIE, "planted-by-an-attacker")
    r = await oidc_login(console, provider, "olga")
    assert r.status_code == 303 and r.headers["location"] == "/admin/content/new", r.text  # an admin's first page
    issued = next(v for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "="))
    assert "planted-by-an-attacker" not in issued and "HttpOnly" in issued and "SameSite=lax" in issued
    exchange = provider.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and len(exchange["code_verifier"]) >= 43
    store = console._transport.app.state.sessions  # type: ignore[attr-defined]
    session = await store.get(issued.split(";")[0].split("=", 1)[1])
    assert session is not None
    # the keycloak preset with a fixed tenant: realm role advocacy-admin -> admin, preferred_username
    assert (session.person.tenant, session.person.sub, session.person.roles) == ("oidc-acme", "olga", ("admin",))
    assert session.person.name == "Olga O." and session.refresh_token and session.id_token
    assert session.token != session.id_token  # the services get the access token


async def test_oidc_callback_of_another_login_or_replayed_is_refused(
    console: httpx.AsyncClient, provider: TestProvider
) -> None:
    callback = await oidc_authorize(console, provider, "emil")
    forged = re.sub(r"state=[^&]+", "state=attacker", callback)
    r = await console.get(forged.removeprefix(BASE))
    assert r.status_code == 400 and SESSION_COOKIE not in console.cookies, r.text
    # the pending login is gone with the refusal: the genuine callback no longer finishes either
    r = await console.get(callback.removeprefix(BASE))
    assert r.status_code == 400 and not await logged_in_as(console)
    # a callback carried to another browser (no pending-login cookie) is refused
    callback = await oidc_authorize(console, provider, "emil")
    console.cookies.delete(oidclogin.PENDING_COOKIE, domain="127.0.0.1", path=oidclogin.CALLBACK)
    assert oidclogin.PENDING_COOKIE not in console.cookies
    r = await console.get(callback.removeprefix(BASE))
    assert r.status_code == 400 and not await logged_in_as(console)


async def test_oidc_code_is_single_use_and_the_nonce_must_match(
    console: httpx.AsyncClient, provider: TestProvider
) -> None:
    callback = await oidc_authorize(console, provider, "emil")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    provider.codes[code].nonce = "another-login's-nonce"  # an ID token minted for another login
    r = await console.get(callback.removeprefix(BASE))
    assert r.status_code == 400 and "ID token" in r.text and not await logged_in_as(console)


async def test_oidc_tokens_are_refreshed_and_a_refused_refresh_ends_the_session(
    console: httpx.AsyncClient, provider: TestProvider
) -> None:
    provider.access_ttl = 30  # within the console's 60 s refresh margin: the next request refreshes
    try:
        await oidc_login(console, provider, "emil")
        before = len(provider.token_requests)
        assert await logged_in_as(console)
        assert provider.token_requests[before]["grant_type"] == "refresh_token"
        provider.refresh_tokens.clear()  # the provider revokes them
        assert not await logged_in_as(console)
    finally:
        provider.access_ttl = 300


async def test_oidc_logout_ends_the_session_here_and_at_the_provider(
    console: httpx.AsyncClient, provider: TestProvider
) -> None:
    await oidc_login(console, provider, "olga")
    sid = console.cookies[SESSION_COOKIE]
    r = await console.post("/logout", data={"csrf": await session_csrf(console)})
    assert r.status_code == 303
    logout = urlsplit(r.headers["location"])
    assert f"{logout.scheme}://{logout.netloc}{logout.path}" == provider.url + "/logout"
    query = parse_qs(logout.query)
    assert query["id_token_hint"] and query["post_logout_redirect_uri"] == [f"{BASE}/login"]
    console.cookies.set(SESSION_COOKIE, sid)
    assert not await logged_in_as(console)


async def test_sessions_are_shared_by_replicas_and_survive_a_restart(
    dev_keys: DevKeys, provider: TestProvider, console_db: str
) -> None:
    one = await started(create_app(oidc_settings(dev_keys, provider, console_db)))
    two = await started(create_app(oidc_settings(dev_keys, provider, console_db)))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url=BASE) as browser:
            # the login starts on one replica and comes back to the other (the pending login is sealed
            # in the browser's cookie with the shared secret)
            callback = await oidc_authorize(browser, provider, "emil")
            browser._transport = httpx.ASGITransport(app=two)
            r = await browser.get(callback.removeprefix(BASE))
            assert r.status_code == 303, r.text
            browser._transport = httpx.ASGITransport(app=one)
            assert await logged_in_as(browser)
        await one.state.sessions.close()
        restarted = await started(create_app(oidc_settings(dev_keys, provider, console_db)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url=BASE) as again:
            again.cookies.set(SESSION_COOKIE, browser.cookies[SESSION_COOKIE])
            assert await logged_in_as(again)
        await restarted.state.sessions.close()
    finally:
        await two.state.sessions.close()


async def test_a_person_has_at_most_the_bound_of_sessions(
    dev_keys: DevKeys, provider: TestProvider, console_db: str
) -> None:
    app = await started(create_app(oidc_settings(dev_keys, provider, console_db, sessions_per_person=2)))
    transport = httpx.ASGITransport(app=app)
    browsers = [httpx.AsyncClient(transport=transport, base_url=BASE) for _ in range(3)]
    try:
        for b in browsers:
            await oidc_login(b, provider, "olga")
        assert [await logged_in_as(b) for b in browsers] == [False, True, True]  # the oldest went
    finally:
        for b in browsers:
            await b.aclose()
        await app.state.sessions.close()


async def test_a_copy_of_the_sessions_table_opens_no_session_and_holds_no_token(
    console: httpx.AsyncClient, provider: TestProvider
) -> None:
    r = await oidc_login(console, provider, "emil")
    sid = next(v for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "=")).split(";")[0]
    sid = sid.split("=", 1)[1]
    store = console._transport.app.state.sessions  # type: ignore[attr-defined]
    session = await store.get(sid)
    assert session is not None and session.refresh_token
    async with store.backend.engine.connect() as conn:
        rows = (await conn.execute(sessiondb.SESSIONS.select())).mappings().all()
    dump = json.dumps([{k: str(v) for k, v in row.items()} for row in rows])
    for secret in (sid, session.token, session.refresh_token, session.id_token):
        assert secret and secret not in dump
