"""A small OpenID Connect provider for tests (issue 20): a real HTTP server on loopback.

It serves discovery, the JWKS, an authorization endpoint (a one-field "who are you" form instead of
a password), the token endpoint (authorization code with a PKCE S256 check, and refresh tokens) and
an end-session endpoint, and signs with :class:`tests.support.idp.TestIssuer`. The tokens it issues
are Keycloak-shaped (``realm_access.roles``, ``preferred_username``), so the console and the
services map them with the ``keycloak`` preset of ``AUTH_ISSUERS``, as with a real Keycloak realm.

No PyPI mock fitted (oidc-provider-mock is not available here); the endpoints are the few the
console uses, each strict where the console must be: a wrong verifier, a reused code, a
redirect_uri other than the registered one are refused, so a console that skips a step fails.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.idp import TestIssuer

ROLES = {"employee": "advocacy-employee", "admin": "advocacy-admin", "coach": "advocacy-coach"}


@dataclass
class User:
    username: str
    role: str = "employee"
    name: str | None = None


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: User
    issued_at: float


@dataclass
class TestProvider:
    """State of the provider; ``url`` is its issuer once serving."""

    __test__ = False

    client_id: str = "advocacy-console"
    redirect_uris: list[str] = field(default_factory=list)
    api_audience: str = "advocacy-api"
    users: dict[str, User] = field(default_factory=dict)
    access_ttl: int = 300
    url: str = ""
    signer: TestIssuer = field(default_factory=lambda: TestIssuer("oidc-test-key"))
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, User] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)

    def auth_issuer(self) -> dict[str, Any]:
        """The ``AUTH_ISSUERS`` entry (and ``CONSOLE_AUTH_ISSUER``) for this provider's access tokens."""
        return {
            "preset": "keycloak",
            "issuer": self.url,
            "audience": self.api_audience,
            "jwks_url": f"{self.url}/jwks",
            "fixed_tenant": self.tenant,
        }

    tenant: str = "oidc-test"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "end_session_endpoint": f"{self.url}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def _tokens(self, user: User, nonce: str | None) -> dict[str, Any]:
        now = int(time.time())
        common = {"iss": self.url, "sub": user.username, "iat": now, "exp": now + self.access_ttl}
        access = {
            **common,
            "aud": self.api_audience,
            "azp": self.client_id,
            "realm_access": {"roles": [ROLES[user.role]]},
            "preferred_username": user.name or user.username,
        }
        id_claims = {**common, "aud": self.client_id, "name": user.name or user.username}
        if nonce is not None:
            id_claims["nonce"] = nonce
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = user
        return {
            "access_token": self.signer.sign({"alg": "RS256", "typ": "JWT"}, access),
            "id_token": self.signer.sign({"alg": "RS256", "typ": "JWT"}, id_claims),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
        }

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        if form.get("grant_type") == "refresh_token":
            user = self.refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotated: single use
            if user is None:
                return 400, {"error": "invalid_grant"}
            return 200, self._tokens(user, None)
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None or time.time() - grant.issued_at > 60:
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if form.get("client_id", grant.client_id) != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "client or redirect_uri mismatch"}
        verifier = form.get("code_verifier", "")
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or not secrets.compare_digest(computed, grant.challenge):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        return 200, self._tokens(grant.user, grant.nonce)

    def authorize(self, query: dict[str, str], username: str | None) -> tuple[int, str]:
        """(302, where) or (200, the login form's HTML) or (400, why)."""
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or redirect not in self.redirect_uris:
            return 400, "unknown client or redirect_uri"
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return 400, "code flow with PKCE S256 only"
        if "openid" not in query.get("scope", "").split() or not query.get("code_challenge"):
            return 400, "openid scope and a code challenge required"
        if username is None:
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items()
            )
            return 200, (
                '<!doctype html><html lang="en"><title>Test IdP</title><main><h1>Test identity provider</h1>'
                f'<form method="get" action="/authorize">{hidden}<label for="username">User</label>'
                '<input id="username" name="username"><button type="submit">Sign in</button></form></main></html>'
            )
        user = self.users.get(username)
        if user is None:
            return 400, "unknown user"
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            self.client_id, redirect, query["code_challenge"], query.get("nonce"), user, time.time()
        )
        answer = {"code": code, "iss": self.url}
        if "state" in query:
            answer["state"] = query["state"]
        return 302, f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(answer)}"


@contextlib.contextmanager
def serve(provider: TestProvider) -> Iterator[TestProvider]:
    """Serve ``provider`` on 127.0.0.1 (its ``url`` set) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: Any) -> None:
            self._send(status, json.dumps(doc).encode(), "application/json")

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif parts.path == "/jwks":
                self._json(200, provider.signer.jwks)
            elif parts.path == "/authorize":
                username = query.pop("username", None)
                status, out = provider.authorize(query, username)
                if status == 302:
                    self._send(302, b"", "text/plain", {"Location": out})
                else:
                    self._send(status, out.encode(), "text/html; charset=utf-8")
            elif parts.path == "/logout":
                provider.logouts.append(query)
                target = query.get("post_logout_redirect_uri")
                if target:
                    self._send(302, b"", "text/plain", {"Location": target})
                else:
                    self._send(200, b"<!doctype html><title>Logged out</title>", "text/html")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._send(404, b"not found", "text/plain")
                return
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            status, doc = provider.exchange(form)
            self._json(status, doc)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
