"""OpenID Connect login: authorization code with PKCE (S256) against the company's identity provider.

Authlib builds the protocol's messages (the authorization URL, the PKCE challenge, the token and
refresh requests, the callback's state check); joserfc checks the ID token's signature with the
provider's published keys; the token the services will get is checked and mapped by the library's
own :class:`JWTVerifier` with the services' ``AUTH_ISSUERS`` entry (``CONSOLE_AUTH_ISSUER``), so the
console names the tenant, the person and the roles exactly as every service will.

What is checked, and where:

* **state** binds the callback to the browser that started the login: it travels in the pending
  login, sealed (JWE, ``dir`` + A256GCM, a key derived from ``CONSOLE_SECRET_KEY``) in a short-lived
  HttpOnly cookie with the nonce and the PKCE verifier, so any replica can finish the login and the
  browser can read none of them.
* **PKCE** (S256): the verifier goes only to the token endpoint; a stolen code is useless without it.
* **The ID token**: signature (asymmetric algorithms only, keys from the provider's ``jwks_uri``),
  ``iss`` = the discovered issuer, ``aud`` contains the client id (``azp`` when there are several),
  ``exp``/``iat`` with 60 s leeway, and the **nonce** of this login.
* **The API token** (the access token, or the ID token for Google): what the services check.
* **Mix-up** (RFC 9207): an ``iss`` parameter on the callback must be the issuer.

Every answer from the provider is bounded (:data:`MAX_ANSWER_BYTES`); a provider that is down is a
:class:`LoginFailed` with a message for the person, never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.oauth2.rfc6749.parameters import (
    parse_authorization_code_response,
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwe, jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, Key, OctKey

from advocacy_common.auth.claims import IssuerConfig
from advocacy_common.auth.verifier import ALLOWED_ALGORITHMS, Fetched, JWTVerifier, fetch_jwks, parse_jwks
from advocacy_common.errors import Unauthorized
from advocacy_console.sessions import Person
from advocacy_console.settings import ConsoleSettings

log = logging.getLogger("advocacy.console.oidc")

DISCOVERY_PATH = "/.well-known/openid-configuration"
# Discovery documents and token answers are a few KB; more is not one.
MAX_ANSWER_BYTES = 256 * 1024
# A login started more than this ago cannot be finished (the person starts again).
PENDING_TTL_SECONDS = 600
# The discovery document is fetched again after this long (a provider moving an endpoint).
METADATA_TTL_SECONDS = 3600
# An unknown kid in an ID token refetches the provider's keys at most this often.
KEYS_REFETCH_SECONDS = 30.0
# Clock skew allowed between us and the provider.
LEEWAY_SECONDS = 60
# 43-128 characters (RFC 7636): 64 random URL-safe characters, 384 bits.
VERIFIER_BYTES = 48
TIMEOUT_SECONDS = 10.0


class LoginFailed(Exception):
    """The login cannot finish; ``str(e)`` is for the person, ``reason`` for the log."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True, slots=True)
class Metadata:
    """The provider's discovery document, what of it the console uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class Pending:
    """A login between the redirect to the provider and the callback."""

    state: str
    nonce: str
    verifier: str
    issued_at: float


@dataclass(frozen=True, slots=True)
class Tokens:
    """What a finished login (or a refresh) gives the session."""

    api_token: str  # the bearer the services get
    person: Person
    expires_at: float  # the API token's expiry (epoch seconds)
    refresh_token: str | None
    id_token: str | None


def _allowed_endpoint(url: object) -> bool:
    """https, or http on a loopback host (a provider on the developer's machine, the tests')."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class OidcClient:
    """One identity provider, one client registration."""

    def __init__(
        self,
        settings: ConsoleSettings,
        secret_key: bytes,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert settings.oidc_client_id and settings.oidc_redirect_url, "OIDC is not configured"
        self.settings = settings
        self.client_id = settings.oidc_client_id
        self.redirect_uri = settings.oidc_redirect_url
        self.issuer = settings.discovery_issuer
        self.issuer_config: IssuerConfig = settings.issuer_config
        self.clock = clock
        self._seal_key = OctKey.import_key(hashlib.sha256(b"advocacy-console-oidc-pending\0" + secret_key).digest())
        self._http = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport)
        self._metadata: Metadata | None = None
        self._keys: dict[str, Key] = {}
        self._keys_fetched_at = float("-inf")
        self._api_verifier: JWTVerifier | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    # -- the provider -------------------------------------------------------------------------------
    async def metadata(self) -> Metadata:
        cached = self._metadata
        if cached is not None and self.clock() - cached.fetched_at < METADATA_TTL_SECONDS:
            return cached
        doc = await self._get_json(self.issuer.rstrip("/") + DISCOVERY_PATH, "discovery")
        if doc.get("issuer") != self.issuer:
            raise LoginFailed(
                "The identity provider is misconfigured.", f"discovery names issuer {str(doc.get('issuer'))[:200]!r}"
            )
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not _allowed_endpoint(doc.get(name)):
                raise LoginFailed("The identity provider is misconfigured.", f"discovery: bad or missing {name}")
            endpoints[name] = str(doc[name])
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise LoginFailed("The identity provider is misconfigured.", "the provider does not support PKCE S256")
        end_session = doc.get("end_session_endpoint")
        self._metadata = Metadata(
            issuer=self.issuer,
            end_session_endpoint=str(end_session) if _allowed_endpoint(end_session) else None,
            fetched_at=self.clock(),
            **endpoints,
        )
        return self._metadata

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        return await self._json(self._http.build_request("GET", url, headers={"Accept": "application/json"}), what)

    async def _json(self, request: httpx.Request, what: str) -> dict[str, Any]:
        try:
            response = await self._http.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise LoginFailed("The identity provider answered strangely.", f"{what}: answer too large")
            finally:
                await response.aclose()
        except httpx.HTTPError as e:
            raise LoginFailed(
                "The identity provider is not answering; try again in a moment.", f"{what}: {type(e).__name__}"
            ) from e
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = None
        if response.status_code >= 400:
            error = doc.get("error") if isinstance(doc, dict) else None
            raise LoginFailed(
                "The identity provider refused the login; try again.",
                f"{what}: {response.status_code} {str(error)[:100] if error else ''}".rstrip(),
            )
        if not isinstance(doc, dict):
            raise LoginFailed("The identity provider answered strangely.", f"{what}: not a JSON object")
        return doc

    # -- the login ----------------------------------------------------------------------------------
    async def begin(self) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the sealed pending login for
        the browser's cookie."""
        meta = await self.metadata()
        pending = Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(VERIFIER_BYTES),
            issued_at=self.clock(),
        )
        url = prepare_grant_uri(
            meta.authorization_endpoint,
            self.client_id,
            "code",
            redirect_uri=self.redirect_uri,
            scope=self.settings.oidc_scopes,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, self.seal(pending)

    def seal(self, pending: Pending) -> str:
        payload = json.dumps([pending.state, pending.nonce, pending.verifier, pending.issued_at]).encode()
        return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, payload, self._seal_key)

    def unseal(self, sealed: str | None) -> Pending:
        expired = LoginFailed("The login took too long or started in another browser; log in again.")
        if not sealed or len(sealed) > 2048:
            raise LoginFailed(str(expired), "no pending login cookie")
        try:
            state, nonce, verifier, issued_at = json.loads(jwe.decrypt_compact(sealed, self._seal_key).plaintext or b"")
        except (JoseError, ValueError, TypeError) as e:
            raise LoginFailed(str(expired), "pending login cookie does not open") from e
        pending = Pending(str(state), str(nonce), str(verifier), float(issued_at))
        if not 0 <= self.clock() - pending.issued_at <= PENDING_TTL_SECONDS:
            raise LoginFailed(str(expired), "pending login expired")
        return pending

    async def finish(self, sealed: str | None, callback_url: str, params: Mapping[str, str]) -> Tokens:
        """The callback: check it belongs to the pending login, redeem the code (with the PKCE
        verifier), check the ID token and the API token."""
        pending = self.unseal(sealed)
        meta = await self.metadata()
        if "error" in params:
            error = params.get("error", "")[:100]
            raise LoginFailed(f"The identity provider did not log you in ({error}).", f"callback error {error}")
        if "iss" in params and params["iss"] != meta.issuer:
            raise LoginFailed("The login answer came from another identity provider.", "callback iss mismatch")
        try:
            answer = parse_authorization_code_response(callback_url, state=pending.state)
        except AuthlibBaseError as e:
            raise LoginFailed("The login answer does not match this login; log in again.", e.error) from e
        body = prepare_token_request(
            "authorization_code",
            code=str(answer["code"])[:4096],
            redirect_uri=self.redirect_uri,
            code_verifier=pending.verifier,
            **({} if self.settings.oidc_client_secret else {"client_id": self.client_id}),
        )
        tokens = await self._token_request(meta, body)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise LoginFailed("The identity provider sent no ID token.", "token answer without id_token")
        await self._check_id_token(meta, id_token, nonce=pending.nonce)
        return await self._tokens(tokens, id_token)

    async def refresh(self, refresh_token: str, id_token: str | None) -> Tokens:
        """New tokens for a session whose API token is about to expire (LoginFailed: log in again)."""
        meta = await self.metadata()
        body = prepare_token_request(
            "refresh_token",
            refresh_token=refresh_token,
            **({} if self.settings.oidc_client_secret else {"client_id": self.client_id}),
        )
        tokens = await self._token_request(meta, body)
        fresh_id = tokens.get("id_token")
        if isinstance(fresh_id, str):
            await self._check_id_token(meta, fresh_id, nonce=None)
            id_token = fresh_id
        out = await self._tokens(tokens, id_token)
        if out.refresh_token is None:  # a provider that does not rotate keeps the old one valid
            out = Tokens(out.api_token, out.person, out.expires_at, refresh_token, out.id_token)
        return out

    async def _token_request(self, meta: Metadata, body: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        secret = self.settings.oidc_client_secret
        if secret is not None:  # client_secret_basic (RFC 6749 2.3.1: each part form-encoded)
            pair = f"{_form(self.client_id)}:{_form(secret.get_secret_value())}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        request = self._http.build_request("POST", meta.token_endpoint, content=body.encode(), headers=headers)
        tokens = await self._json(request, "token endpoint")
        if str(tokens.get("token_type", "")).lower() != "bearer":
            raise LoginFailed("The identity provider answered strangely.", "token_type is not Bearer")
        return tokens

    async def _tokens(self, tokens: Mapping[str, Any], id_token: str | None) -> Tokens:
        api_token = id_token if self.settings.oidc_api_token == "id_token" else tokens.get("access_token")
        if not isinstance(api_token, str):
            raise LoginFailed("The identity provider sent no usable token.", f"no {self.settings.oidc_api_token}")
        verifier = await self._verifier()
        try:
            principal = await verifier.averify(api_token)
        except Unauthorized as e:
            raise LoginFailed(
                "Your account is not set up for this platform (no tenant or role); ask your administrator.",
                f"api token refused: {e}",
            ) from e
        expires_at = principal.expires_at.timestamp() if principal.expires_at else self.clock() + 300
        person = Person(
            tenant=principal.tenant_id,
            sub=principal.sub,
            roles=tuple(sorted(principal.roles)),
            team=principal.team,
            name=principal.name,
        )
        refresh = tokens.get("refresh_token")
        return Tokens(api_token, person, expires_at, refresh if isinstance(refresh, str) else None, id_token)

    async def _verifier(self) -> JWTVerifier:
        """The services' check of the API token (made once: its constructor may fetch the JWKS)."""
        if self._api_verifier is None:
            config = self.issuer_config
            self._api_verifier = await asyncio.to_thread(
                JWTVerifier,
                issuer=config.issuer,
                audience=config.audience,
                leeway_seconds=LEEWAY_SECONDS,
                jwks_path=config.jwks_path,
                jwks_url=config.jwks_url,
                mapping=config.mapping(),
            )
        return self._api_verifier

    async def _check_id_token(self, meta: Metadata, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        if len(id_token) > 16 * 1024:
            raise LoginFailed("The identity provider sent a bad ID token.", "id token too long")
        try:
            header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "==="))
            kid = header.get("kid") if isinstance(header, dict) else None
        except (ValueError, IndexError):
            kid = None
        if not isinstance(kid, str) or not kid:
            raise LoginFailed("The identity provider sent a bad ID token.", "id token header has no kid")
        async with self._lock:
            if kid not in self._keys and self.clock() - self._keys_fetched_at >= KEYS_REFETCH_SECONDS:
                self._keys_fetched_at = self.clock()
                try:
                    fetched = await asyncio.to_thread(fetch_jwks, meta.jwks_uri)
                    document = fetched.document if isinstance(fetched, Fetched) else fetched
                    self._keys = parse_jwks(document, source="idp")
                except (httpx.HTTPError, ValueError) as e:
                    raise LoginFailed("The identity provider is not answering; try again.", f"jwks: {e}") from e
        key = self._keys.get(kid)
        if key is None:
            raise LoginFailed("The identity provider sent a bad ID token.", "id token signed by an unknown key")

        def resolve(_: GuestProtocol) -> Key:
            return key

        claims_options: dict[str, Any] = {
            "iss": {"essential": True, "value": meta.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "sub": {"essential": True},
        }
        if nonce is not None:
            claims_options["nonce"] = {"essential": True, "value": nonce}
        registry = jwt.JWTClaimsRegistry(now=int(self.clock()), leeway=LEEWAY_SECONDS, **claims_options)
        try:
            decoded = jwt.decode(id_token, resolve, algorithms=list(ALLOWED_ALGORITHMS))
            registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as e:
            raise LoginFailed("The identity provider sent a bad ID token.", f"id token: {e}") from e
        aud = decoded.claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and decoded.claims.get("azp") != self.client_id:
            raise LoginFailed("The identity provider sent a bad ID token.", "id token azp is not this client")
        return dict(decoded.claims)

    # -- logout -------------------------------------------------------------------------------------
    async def logout_url(self, id_token: str | None) -> str | None:
        """RP-initiated logout at the provider, when it offers one (None: the console's logout alone)."""
        try:
            meta = await self.metadata()
        except LoginFailed:
            return None
        if meta.end_session_endpoint is None:
            return None
        params = {"client_id": self.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        if self.settings.oidc_post_logout_redirect_url:
            params["post_logout_redirect_uri"] = self.settings.oidc_post_logout_redirect_url
        joiner = "&" if urlsplit(meta.end_session_endpoint).query else "?"
        return meta.end_session_endpoint + joiner + urlencode(params)


def _form(value: str) -> str:
    return quote_plus(value)
