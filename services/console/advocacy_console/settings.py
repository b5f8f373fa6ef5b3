"""The console's settings, from the environment (``CONSOLE_`` prefix; ``DEV_MODE`` also unprefixed).

The console has no database and no broker: it knows where the four public APIs are, twice. The
``*_url`` ones are where the console itself calls them (in a cluster, the services' internal names);
``public_*_url`` is what the browser is given for the calls it makes directly (the wall's stream),
and defaults to the internal one, which is right on a developer's machine.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # Sessions live in this process's memory (slice 1): at most ``max_sessions``, the least recently
    # used dropped first, each ending after ``session_idle_seconds`` without a request or when its
    # token expires. A restart logs everyone out; more than one replica needs sticky sessions.
    max_sessions: int = Field(default=10_000, ge=1, le=1_000_000)
    session_idle_seconds: int = Field(default=2 * 3600, ge=60)
    # Secure cookies everywhere but plain-HTTP dev.
    cookie_secure: bool = True
    # Signs the login form's CSRF nonce; random per process when unset (a restart invalidates open
    # login forms, nothing else).
    secret_key: SecretStr | None = None
    # Form bodies over this are refused (413) before they are parsed.
    max_form_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @property
    def stream_base_url(self) -> str:
        """Where the browser opens the wall's stream; empty = the console's own origin (behind one
        gateway with the APIs, as in Kubernetes: no CORS needed)."""
        public = self.public_gamification_url
        return (public if public is not None else self.gamification_url).rstrip("/")

    @property
    def stream_origin(self) -> str:
        """The stream's origin for the Content-Security-Policy ('self' when it is the console's)."""
        parts = urlsplit(self.stream_base_url)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"
