"""The console's routes: read the session, call the public APIs with the person's token, render.

Every state-changing route is a POST carrying the session's CSRF token (a form field ``csrf``, or the
``X-CSRF-Token`` header for scripts); every page of another tenant's ids is whatever the API says,
so a foreign id is the API's 404.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from advocacy_console import devlogin
from advocacy_console.sessions import Person, Session, Sessions
from advocacy_console.settings import ConsoleSettings
from advocacy_console.upstream import Upstream

SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
# Where the request's session waits for the end of the request (the app saves it if it changed).
SESSION_SCOPE_KEY = "console.session"
# A form has at most this many fields; the body size is bounded before (BodyLimit).
MAX_FORM_FIELDS = 50
WINDOWS = ("week", "month", "all")

router = APIRouter()


class LoginRequired(Exception):
    """No live session: the person goes to the login page."""


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token."""


class BadForm(Exception):
    """A form that cannot be parsed (too many fields, not URL-encoded)."""


# -- wiring -------------------------------------------------------------------------------------------
def settings_of(request: Request) -> ConsoleSettings:
    s: ConsoleSettings = request.app.state.settings
    return s


def store_of(request: Request) -> Sessions:
    store: Sessions = request.app.state.sessions
    return store


def upstream_of(request: Request) -> Upstream:
    up: Upstream = request.app.state.upstream
    return up


def templates_of(request: Request) -> Jinja2Templates:
    t: Jinja2Templates = request.app.state.templates
    return t


async def current_session(request: Request) -> Session:
    session = await store_of(request).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired
    request.scope[SESSION_SCOPE_KEY] = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


async def form_of(request: Request) -> dict[str, str]:
    """The URL-encoded form (the last value of a repeated field), bounded in fields."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise BadForm("expected a URL-encoded form")
    raw = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError as e:
        raise BadForm("too many fields") from e
    return dict(pairs)


async def checked_form(request: Request, session: SessionDep) -> dict[str, str]:
    """The form of a state-changing request whose CSRF token matches the session's."""
    form = await form_of(request)
    if not session.csrf_matches(form.get("csrf") or request.headers.get("x-csrf-token")):
        raise CsrfRejected
    return form


FormDep = Annotated[dict[str, str], Depends(checked_form)]


def page(request: Request, name: str, session: Session | None, status_code: int = 200, **context: Any) -> Response:
    context.update(
        session=session,
        person=session.person if session else None,
        csrf=session.csrf if session else None,
        flashes=session.take_flashes() if session else [],
    )
    return templates_of(request).TemplateResponse(request, name, context, status_code=status_code)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def set_cookie(response: Response, settings: ConsoleSettings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax", secure=settings.cookie_secure, path="/"
    )


# -- login and logout ---------------------------------------------------------------------------------
def _login_mac(request: Request, nonce: str) -> str:
    key: bytes = request.app.state.secret_key
    return hmac.new(key, nonce.encode(), "sha256").hexdigest()


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    settings = settings_of(request)
    enabled = settings.dev_mode and devlogin.dev_keys(settings.dev_keys_dir) is not None
    nonce = secrets.token_urlsafe(16)
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        login_csrf=_login_mac(request, nonce),
        dev_login=enabled,
        oidc_login=settings.oidc_enabled,
        roles=devlogin.ROLES,
        error=error,
    )
    set_cookie(response, settings, LOGIN_COOKIE, nonce, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    if await store_of(request).get(request.cookies.get(SESSION_COOKIE)) is not None:
        return see_other("/board")
    return _login_page(request)


@router.post("/login/dev")
async def dev_login(request: Request) -> Response:
    settings = settings_of(request)
    keys = devlogin.dev_keys(settings.dev_keys_dir) if settings.dev_mode else None
    if keys is None:
        return _login_page(request, "Dev login is off (it needs DEV_MODE and the dev stack's key).", 404)
    form = await form_of(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    if not nonce or not hmac.compare_digest(form.get("csrf", ""), _login_mac(request, nonce)):
        raise CsrfRejected
    try:
        login = devlogin.DevLogin.parse(form)
    except devlogin.BadLogin as e:
        return _login_page(request, str(e), 422)
    token, person, expires_at = devlogin.issue(
        keys,
        login,
        settings.dev_token_ttl_seconds,
        issuer=settings.dev_token_issuer,
        audience=settings.dev_token_audience,
    )
    response = await start_session(request, token, person, expires_at)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def start_session(
    request: Request,
    token: str,
    person: Person,
    expires_at: float,
    *,
    refresh_token: str | None = None,
    id_token: str | None = None,
) -> Response:
    """A logged-in person's first answer: a new session (the id the browser had, if any, is dropped:
    no fixation) and a redirect to their first page."""
    settings, store = settings_of(request), store_of(request)
    await store.delete(request.cookies.get(SESSION_COOKIE))
    session = await store.create(token, person, expires_at, refresh_token=refresh_token, id_token=id_token)
    response = see_other("/admin/content/new" if person.is_admin else "/board")
    set_cookie(response, settings, SESSION_COOKIE, session.id, max_age=settings.session_max_age_seconds)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    """Ends the session here, then at the identity provider when it offers RP-initiated logout."""
    await store_of(request).delete(session.id)
    request.scope.pop(SESSION_SCOPE_KEY, None)
    oidc = request.app.state.oidc
    elsewhere = await oidc.logout_url(session.id_token) if oidc is not None and session.id_token else None
    response = see_other(elsewhere or "/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    return see_other("/board")


# -- the board and sharing ----------------------------------------------------------------------------
async def _board_items(request: Request, session: Session, q: str | None) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, Any] = {"limit": 50}
    if q:
        params["q"] = q[:200]
    if session.person.is_admin:
        params["status"] = "published"
    answer = await upstream_of(request).call("content", "GET", "/v1/content", session.token, params=params)
    if not answer.ok:
        return [], answer.error_message
    body = answer.body if isinstance(answer.body, dict) else {}
    items = [i for i in body.get("items", []) if isinstance(i, dict)]
    for item in items:
        captions = item.get("captions") or {}
        # one share button per network with a caption; LinkedIn when the item has none
        item["share_on"] = sorted(captions) or ["linkedin"]
    return items, body.get("notice")


@router.get("/board", response_class=HTMLResponse)
async def board(request: Request, session: SessionDep, q: str | None = None) -> Response:
    items, notice = await _board_items(request, session, q)
    if request.headers.get("hx-request") == "true":
        return page(request, "_board_items.html", session, items=items, notice=notice)
    return page(request, "board.html", session, items=items, notice=notice, q=q or "")


@router.post("/share")
async def share(request: Request, session: SessionDep, form: FormDep) -> Response:
    content_id, network = form.get("content_id", "")[:64], form.get("network", "")[:32]
    body: dict[str, Any] = {"content_id": content_id, "network": network}
    message = form.get("message", "").strip()
    if message:
        body["message"] = message[:70000]
    answer = await upstream_of(request).call("sharing", "POST", "/v1/shares", session.token, json=body)
    if answer.status == 404:
        session.flash("This item cannot be shared yet; try again in a few seconds.")
        return see_other("/board")
    if not answer.ok:
        session.flash(f"Not shared: {answer.error_message}")
        return see_other("/board")
    created = answer.body if isinstance(answer.body, dict) else {}
    intent = created.get("intent_url")
    if isinstance(intent, str) and urlsplit(intent).scheme == "https":
        return see_other(intent)
    session.flash(f"Your tracked link: {created.get('link', '')}")
    return see_other("/board")


@router.post("/share/ticket")
async def share_ticket(request: Request, session: SessionDep, form: FormDep) -> Response:
    """A single-use share ticket for the board's script, which then creates the share at sharing
    itself (``POST /v1/shares/with-ticket``): the page never holds the person's token (ADR 0014)."""
    body = {"content_id": form.get("content_id", "")[:64], "network": form.get("network", "")[:32]}
    answer = await upstream_of(request).call("sharing", "POST", "/v1/shares/tickets", session.token, json=body)
    if not answer.ok or not isinstance(answer.body, dict):
        return JSONResponse({"error": {"code": "no_ticket", "message": answer.error_message}}, status_code=502)
    return JSONResponse(
        {
            "ticket": answer.body.get("ticket"),
            "expires_at": answer.body.get("expires_at"),
            "url": settings_of(request).public_sharing_base_url + "/v1/shares/with-ticket",
        }
    )


# -- my results ---------------------------------------------------------------------------------------
@router.get("/me", response_class=HTMLResponse)
async def my_results(request: Request, session: SessionDep, window: str = "week") -> Response:
    """Shares, counted clicks, reach, points, rank and the gap to the next place, badges."""
    window = window if window in WINDOWS else "week"
    up = upstream_of(request)
    metrics = await up.call("metrics", "GET", "/v1/metrics/employees/me", session.token)
    place = await up.call("gamification", "GET", "/v1/leaderboard/me", session.token, params={"window": window})
    badges = await up.call("gamification", "GET", "/v1/badges/me", session.token)
    return page(
        request,
        "me.html",
        session,
        window=window,
        metrics=metrics.body if metrics.ok and isinstance(metrics.body, dict) else None,
        place=place.body if place.ok and isinstance(place.body, dict) else None,
        badges=badges.body.get("items", []) if badges.ok and isinstance(badges.body, dict) else [],
        errors=[a.error_message for a in (metrics, place, badges) if not a.ok],
    )


@router.post("/policy-check", response_class=HTMLResponse)
async def policy_check(request: Request, session: SessionDep, form: FormDep) -> Response:
    """Feedback while a message is edited (htmx): the tenant's policy on that network, from content."""
    body = {"network": form.get("network", "")[:32], "text": form.get("message", "")[:100_000]}
    answer = await upstream_of(request).call("content", "POST", "/v1/policy/check", session.token, json=body)
    result = answer.body if answer.ok and isinstance(answer.body, dict) else None
    error = None if answer.ok else answer.error_message
    return page(request, "_policy_feedback.html", session, result=result, error=error)


# -- rewards ------------------------------------------------------------------------------------------
# Ids the services issue: letters, digits, - and _ (anything else cannot be one, so it is a 404 here).
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@router.get("/rewards", response_class=HTMLResponse)
async def rewards(request: Request, session: SessionDep) -> Response:
    """The catalogue with each reward's cost and stock, the person's balance and redemptions."""
    up = upstream_of(request)
    catalogue = await up.call("gamification", "GET", "/v1/rewards", session.token, params={"limit": 100})
    points = await up.call("gamification", "GET", "/v1/points/me", session.token, params={"limit": 1})
    mine = await up.call("gamification", "GET", "/v1/redemptions", session.token, params={"limit": 50})
    names = {r.get("id"): r.get("name") for r in _items(catalogue.body)}
    return page(
        request,
        "rewards.html",
        session,
        rewards=_items(catalogue.body),
        balance=points.body.get("balance") if points.ok and isinstance(points.body, dict) else None,
        redemptions=[{**r, "name": names.get(r.get("reward_id"), r.get("reward_id"))} for r in _items(mine.body)],
        # one key per rendering of a Redeem button: a double submit is one redemption (Idempotency-Key)
        idempotency_key=secrets.token_urlsafe(16),
        errors=[a.error_message for a in (catalogue, points, mine) if not a.ok],
    )


def _items(body: Any) -> list[dict[str, Any]]:
    items = body.get("items", []) if isinstance(body, dict) else []
    return [i for i in items if isinstance(i, dict)]


@router.post("/rewards/{reward_id}/redeem")
async def redeem(request: Request, reward_id: str, session: SessionDep, form: FormDep) -> Response:
    key = form.get("idempotency_key", "")
    if not _ID.match(reward_id):
        session.flash("There is no such reward.")
        return see_other("/rewards")
    headers = {"Idempotency-Key": key[:64]} if key else None
    answer = await upstream_of(request).call(
        "gamification", "POST", f"/v1/rewards/{reward_id}/redeem", session.token, headers=headers
    )
    if answer.status == 404:
        session.flash("There is no such reward.")
    elif not answer.ok:
        session.flash(f"Not redeemed: {answer.error_message}")
    else:
        session.flash("Redeemed: an admin will hand it over.")
    return see_other("/rewards")


# -- the wall -----------------------------------------------------------------------------------------
@router.get("/wall", response_class=HTMLResponse)
async def wall(request: Request, session: SessionDep, window: str = "week") -> Response:
    window = window if window in WINDOWS else "week"
    answer = await upstream_of(request).call(
        "gamification", "GET", "/v1/leaderboard", session.token, params={"window": window, "limit": 10}
    )
    board = answer.body if answer.ok and isinstance(answer.body, dict) else {"items": []}
    return page(
        request,
        "wall.html",
        session,
        board=board,
        window=window,
        stream_url=settings_of(request).stream_base_url + "/v1/leaderboard/stream",
    )


@router.post("/wall/ticket")
async def wall_ticket(request: Request, session: SessionDep) -> Response:
    """A fresh stream ticket for the wall's script (which then connects to gamification itself)."""
    if not session.csrf_matches(request.headers.get("x-csrf-token")):
        raise CsrfRejected
    answer = await upstream_of(request).call("gamification", "POST", "/v1/leaderboard/stream-tickets", session.token)
    if not answer.ok or not isinstance(answer.body, dict):
        return JSONResponse({"error": {"code": "no_ticket", "message": answer.error_message}}, status_code=502)
    return JSONResponse({"ticket": answer.body.get("ticket"), "expires_at": answer.body.get("expires_at")})


# -- health -------------------------------------------------------------------------------------------
@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz() -> dict[str, str]:
    # The console is ready when it can serve; a service that is down shows on the pages that need it.
    return {"status": "ready"}
