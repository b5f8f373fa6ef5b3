"""The console's settings, from the environment (``CONSOLE_`` prefix; ``DEV_MODE`` also unprefixed).

The console has no database and no broker: it knows where the four public APIs are, twice. The
``*_url`` ones are where the console itself calls them (in a cluster, the services' internal names);
``public_*_url`` is what the browser is given for the calls it makes directly (the wall's stream),
and defaults to the internal one, which is right on a developer's machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from advocacy_common.auth.claims import IssuerConfig, parse_issuers
from advocacy_common.settings import DEV_AUDIENCE, DEV_ISSUER

DEFAULT_PORT = 8010
# Where `make` installs the front-end libraries (tools/console-assets, `npm ci`); the image copies
# them to the same place relative to the package.
DEFAULT_ASSETS_DIR = Path(__file__).resolve().parents[3] / "tools" / "console-assets" / "node_modules"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    content_url: str = "http://127.0.0.1:8001"
    sharing_url: str = "http://127.0.0.1:8002"
    metrics_url: str = "http://127.0.0.1:8003"
    gamification_url: str = "http://127.0.0.1:8004"
    public_gamification_url: str | None = None
    # what the browser is given for the share it creates itself (POST /v1/shares/with-ticket)
    public_sharing_url: str | None = None
    assets_dir: Path = DEFAULT_ASSETS_DIR

    # The dev login page (pick tenant, person, role) signs tokens with the dev stack's key: only in
    # dev mode, and only when that key is found in ``dev_keys_dir``.
    dev_mode: bool = Field(default=False, validation_alias=AliasChoices("CONSOLE_DEV_MODE", "DEV_MODE"))
    dev_keys_dir: Path | None = None
    dev_token_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=24 * 3600)
    # The issuer and audience the services expect of those tokens: the dev stack's by default;
    # Compose's identity-provider stand-in has its own issuer (deploy/compose/console.yml).
    dev_token_issuer: str = DEV_ISSUER
    dev_token_audience: str = DEV_AUDIENCE

    # OpenID Connect login (code + PKCE) against the company's identity provider (ADR 0014). On when
    # ``oidc_client_id`` and ``auth_issuer`` are set. ``auth_issuer`` is the services' own
    # ``AUTH_ISSUERS`` entry for the token they receive (preset, audience, keys, tenant and role
    # mapping: a JSON object), so the console names the person exactly as the services will;
    # ``oidc_issuer`` is where discovery is (by default that entry's issuer).
    auth_issuer: str | None = None
    oidc_issuer: str | None = Field(default=None, max_length=2048)
    oidc_client_id: str | None = Field(default=None, max_length=512)
    # Empty: a public client (PKCE alone); set: a confidential one (client_secret_basic).
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = Field(default="openid profile offline_access", max_length=1000)
    # The callback as registered at the provider: https://<console>/login/oidc/callback.
    oidc_redirect_url: str | None = Field(default=None, max_length=2048)
    # Where the provider sends the browser after a logout there (RP-initiated logout), when it offers one.
    oidc_post_logout_redirect_url: str | None = Field(default=None, max_length=2048)
    # Which of the provider's tokens the services get as the bearer: the access token (Entra, Okta,
    # Keycloak with an API audience) or the ID token (Google, whose access tokens are opaque).
    oidc_api_token: Literal["access_token", "id_token"] = "access_token"

    # Sessions (ADR 0014): in the console's own table when ``database_url`` is set (they survive a
    # restart and are shared by replicas: what every deployment sets, dev ones too), else in this
    # process's memory (tests that build the console in-process: at most ``max_sessions``, the least
    # recently used dropped first). Either way a session ends after ``session_idle_seconds`` without
    # a request, ``session_max_age_seconds`` after the login, or when its token expires with no
    # refresh token; a person has at most ``sessions_per_person`` (a new login drops their oldest).
    database_url: str | None = Field(default=None, max_length=4096)
    max_sessions: int = Field(default=10_000, ge=1, le=1_000_000)
    session_idle_seconds: int = Field(default=2 * 3600, ge=60)
    session_max_age_seconds: int = Field(default=12 * 3600, ge=300, le=30 * 24 * 3600)
    sessions_per_person: int = Field(default=10, ge=1, le=1000)
    # Secure cookies everywhere but plain-HTTP dev.
    cookie_secure: bool = True
    # Signs the login form's CSRF nonce; random per process when unset (a restart invalidates open
    # login forms, nothing else).
    secret_key: SecretStr | None = None
    # Form bodies over this are refused (413) before they are parsed.
    max_form_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @model_validator(mode="after")
    def _oidc_complete(self) -> ConsoleSettings:
        if bool(self.oidc_client_id) != bool(self.auth_issuer):
            raise ValueError("CONSOLE_OIDC_CLIENT_ID and CONSOLE_AUTH_ISSUER go together (or neither)")
        if self.database_url and not self.dev_mode and self.secret_key is None:
            # it seals the tokens in the sessions table: every replica, and the next start, needs the same
            raise ValueError("CONSOLE_SECRET_KEY must be set with CONSOLE_DATABASE_URL outside dev mode")
        if self.oidc_client_id:
            _ = self.issuer_config  # parsed now: a bad entry stops the start, naming the field
            if not self.oidc_redirect_url:
                raise ValueError("CONSOLE_OIDC_REDIRECT_URL: the callback registered at the identity provider")
            if not self.dev_mode and self.secret_key is None:
                raise ValueError("CONSOLE_SECRET_KEY must be set with OIDC outside dev mode (shared by replicas)")
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_client_id and self.auth_issuer)

    @property
    def issuer_config(self) -> IssuerConfig:
        """``auth_issuer`` parsed and completed from its preset, exactly as a service parses it."""
        if not self.auth_issuer:
            raise ValueError("CONSOLE_AUTH_ISSUER is not set")
        try:
            raw = json.loads(self.auth_issuer)
        except ValueError as e:
            raise ValueError(f"CONSOLE_AUTH_ISSUER: not JSON ({e})") from None
        return parse_issuers([raw], setting="CONSOLE_AUTH_ISSUER")[0]

    @property
    def discovery_issuer(self) -> str:
        return self.oidc_issuer or self.issuer_config.issuer

    @property
    def stream_base_url(self) -> str:
        """Where the browser opens the wall's stream; empty = the console's own origin (behind one
        gateway with the APIs, as in Kubernetes: no CORS needed)."""
        public = self.public_gamification_url
        return (public if public is not None else self.gamification_url).rstrip("/")

    @property
    def public_sharing_base_url(self) -> str:
        """Where the browser creates a share with a ticket; empty = the console's own origin."""
        public = self.public_sharing_url
        return (public if public is not None else self.sharing_url).rstrip("/")

    @property
    def browser_origins(self) -> str:
        """The APIs' origins the browser connects to (the Content-Security-Policy's connect-src)."""
        origins = []
        for base in (self.stream_base_url, self.public_sharing_base_url):
            parts = urlsplit(base)
            if parts.scheme and parts.netloc and f"{parts.scheme}://{parts.netloc}" not in origins:
                origins.append(f"{parts.scheme}://{parts.netloc}")
        return " ".join(origins)

    @property
    def stream_origin(self) -> str:
        """The stream's origin for the Content-Security-Policy ('self' when it is the console's)."""
        parts = urlsplit(self.stream_base_url)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"
