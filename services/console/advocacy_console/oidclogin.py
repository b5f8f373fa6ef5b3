"""The OpenID Connect login's two routes (the protocol itself is :mod:`advocacy_console.oidc`).

``POST /login/oidc`` (the login form's signed nonce, like the dev login) sends the browser to the
provider with a sealed pending login in an HttpOnly cookie scoped to the callback; ``GET
/login/oidc/callback`` finishes it and starts a session with a new id. A failure is the login page
with a message for the person (400), and its reason in the log.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from advocacy_console import pages
from advocacy_console.oidc import PENDING_TTL_SECONDS, LoginFailed, OidcClient

log = logging.getLogger("advocacy.console.oidc")
router = APIRouter()

PENDING_COOKIE = "console_oidc"
CALLBACK = "/login/oidc/callback"


def _oidc(request: Request) -> OidcClient | None:
    client: OidcClient | None = request.app.state.oidc
    return client


@router.post("/login/oidc")
async def start(request: Request) -> Response:
    oidc = _oidc(request)
    if oidc is None:
        return pages._login_page(request, "Sign-in through the identity provider is not configured.", 404)
    form = await pages.form_of(request)
    nonce = request.cookies.get(pages.LOGIN_COOKIE) or ""
    if not nonce or not hmac.compare_digest(form.get("csrf", ""), pages._login_mac(request, nonce)):
        raise pages.CsrfRejected
    try:
        url, sealed = await oidc.begin()
    except LoginFailed as e:
        log.warning("oidc login could not start", extra={"reason": e.reason})
        return pages._login_page(request, str(e), 502)
    response = pages.see_other(url)
    response.set_cookie(
        PENDING_COOKIE,
        sealed,
        max_age=PENDING_TTL_SECONDS,
        httponly=True,
        samesite="lax",  # the callback is a top-level navigation from the provider: Lax cookies go
        secure=pages.settings_of(request).cookie_secure,
        path=CALLBACK,
    )
    return response


@router.get(CALLBACK)
async def callback(request: Request) -> Response:
    oidc = _oidc(request)
    if oidc is None:
        return pages._login_page(request, "Sign-in through the identity provider is not configured.", 404)
    if len(str(request.url)) > 8192 or len(request.query_params) > 20:
        return pages._login_page(request, "The login answer is malformed; log in again.", 400)
    params = {k: v[:8192] for k, v in request.query_params.items()}
    try:
        tokens = await oidc.finish(request.cookies.get(PENDING_COOKIE), str(request.url), params)
    except LoginFailed as e:
        log.warning("oidc login refused", extra={"reason": e.reason})
        response = pages._login_page(request, str(e), 400)
        response.delete_cookie(PENDING_COOKIE, path=CALLBACK)
        return response
    response = await pages.start_session(
        request,
        tokens.api_token,
        tokens.person,
        tokens.expires_at,
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token,
    )
    response.delete_cookie(PENDING_COOKIE, path=CALLBACK)
    response.delete_cookie(pages.LOGIN_COOKIE, path="/")
    return response
