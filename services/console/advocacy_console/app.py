"""The console's process: ``create_app(settings)`` and ``main`` (``python -m advocacy_console serve``)."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from advocacy_common.bodylimit import BodyLimit
from advocacy_common.settings import HTTP_KEEP_ALIVE_SECONDS
from advocacy_console import admin_pages, employee_pages, oidclogin, pages
from advocacy_console.oidc import OidcClient
from advocacy_console.sessions import Backend, MemoryBackend, Renewed, Sessions
from advocacy_console.settings import ConsoleSettings
from advocacy_console.upstream import SessionEnded, Upstream, UpstreamUnavailable

HERE = Path(__file__).parent
# The front-end libraries the pages load, by the name they are served under: a fixed list, so no
# path from a request ever reaches the file system.
VENDOR_FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
}


# How people write the networks' names (the API's enum values are lower case).
NETWORK_NAMES = {
    "linkedin": "LinkedIn",
    "x": "X",
    "facebook": "Facebook",
    "xing": "XING",
    "instagram": "Instagram",
    "threads": "Threads",
    "bluesky": "Bluesky",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
    "reddit": "Reddit",
    "email": "email",
}


def _origin(url: str) -> str:
    """`` <scheme>://<host:port>`` of an http URL (a provider on loopback), empty for https (allowed)."""
    parts = urlsplit(url)
    return f" {parts.scheme}://{parts.netloc}" if parts.scheme == "http" and parts.netloc else ""


def content_security_policy(settings: ConsoleSettings) -> str:
    """Scripts, styles and fonts from the console alone; the wall's stream may go to gamification."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {settings.browser_origins}".rstrip(),  # the wall's stream, the share
            "frame-ancestors 'none'",
            # a share ends on the network's share dialog; a login and a logout on the identity provider
            f"form-action 'self' https:{_origin(settings.discovery_issuer) if settings.oidc_enabled else ''}",
            "base-uri 'none'",
            "object-src 'none'",
        )
    )


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    upstream = Upstream(settings)
    secret_key = settings.secret_key.get_secret_value().encode() if settings.secret_key else secrets.token_bytes(32)
    oidc = OidcClient(settings, secret_key) if settings.oidc_enabled else None

    async def renew(refresh_token: str, id_token: str | None) -> Renewed:
        assert oidc is not None
        tokens = await oidc.refresh(refresh_token, id_token)
        return Renewed(tokens.api_token, tokens.expires_at, tokens.refresh_token, tokens.id_token)

    backend: Backend
    if settings.database_url:
        from advocacy_console.sessiondb import TableBackend

        backend = TableBackend(
            settings.database_url,
            secret_key=secret_key,
            idle_seconds=settings.session_idle_seconds,
            max_age_seconds=settings.session_max_age_seconds,
        )
    else:
        backend = MemoryBackend(settings.max_sessions)
    sessions = Sessions(
        backend,
        idle_seconds=settings.session_idle_seconds,
        max_age_seconds=settings.session_max_age_seconds,
        max_per_person=settings.sessions_per_person,
        refresher=renew if oidc is not None else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url:
            from advocacy_console.sessiondb import migrate

            await migrate(settings.database_url)
        try:
            yield
        finally:
            await upstream.close()
            await sessions.close()
            if oidc is not None:
                await oidc.close()

    app = FastAPI(title="Advocacy console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.upstream = upstream
    app.state.sessions = sessions
    app.state.oidc = oidc
    app.state.templates = templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["network"] = lambda name: NETWORK_NAMES.get(str(name), str(name))
    app.state.secret_key = secret_key
    app.include_router(pages.router)
    app.include_router(oidclogin.router)
    app.include_router(admin_pages.router)
    app.include_router(employee_pages.router)
    app.mount("/static/console", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/static/vendor/{name}", include_in_schema=False)
    async def vendor(name: str) -> FileResponse:
        relative = VENDOR_FILES.get(name)
        path = settings.assets_dir / relative if relative else None
        if path is None or not path.is_file():
            raise HTTPException(404)
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})

    @app.exception_handler(pages.LoginRequired)
    async def to_login(request: Request, exc: Exception) -> Response:
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(SessionEnded)
    async def session_ended(request: Request, exc: Exception) -> Response:
        await request.app.state.sessions.delete(request.cookies.get(pages.SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(pages.SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(pages.CsrfRejected)
    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("The form expired or did not come from this console: reload and try again.", 403)

    @app.exception_handler(pages.BadForm)
    async def bad_form(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"Bad form: {exc}", 400)

    @app.exception_handler(UpstreamUnavailable)
    async def unavailable(request: Request, exc: Exception) -> Response:
        service = exc.service if isinstance(exc, UpstreamUnavailable) else "a service"
        return pages.page(
            request,
            "error.html",
            None,
            status_code=502,
            message=f"The {service} service is not answering right now; try again in a moment.",
        )

    policy = content_security_policy(settings)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        # what the route changed in the session (a flash, a shown flash) is written before the answer leaves
        session = request.scope.get(pages.SESSION_SCOPE_KEY)
        if session is not None and session.dirty:
            await sessions.save(session)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(BodyLimit, max_bytes=settings.max_form_bytes)
    return app


def main() -> None:
    """``advocacy-console`` / ``python -m advocacy_console [serve]``."""
    import uvicorn

    if sys.argv[1:] not in ([], ["serve"]):
        print("usage: python -m advocacy_console [serve]", file=sys.stderr)
        raise SystemExit(2)
    settings = ConsoleSettings()
    uvicorn.run(
        "advocacy_console.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        access_log=False,
        timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
    )
