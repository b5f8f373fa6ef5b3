"""Signing keys refused when weak outside dev mode (issue 13, item 5): advocacy_common.signing_keys
and the settings that use it."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from advocacy_common.settings import ServiceSettings, settings_error_line
from advocacy_common.signing_keys import MIN_BYTES, PUBLISHED_DEFAULTS, env_name, marked_fields, weakness
from advocacy_content.settings import ContentSettings
from advocacy_gamification.settings import GamificationSettings
from advocacy_metrics.settings import MetricsSettings
from advocacy_sharing.settings import SharingSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CLASSES: tuple[type[ServiceSettings], ...] = (ContentSettings, SharingSettings, MetricsSettings, GamificationSettings)
# Outside dev mode, everything but the signing keys set to something valid.
PROD = {
    "database_url": "postgresql+asyncpg://u:p@db:5432/x",
    "jwt_jwks_url": "https://idp/jwks",
    "jwt_issuer": "https://idp/",
}
WEAK = {
    "unset": "",
    "blank": "   ",
    "short": "s" * (MIN_BYTES - 1),
    "the dev default": "dev-visitor-secret",
    "a compose default": "compose-click-id-secret-change-me",
    "a placeholder": "our-production-secret-CHANGE-ME-before-going-live",
}


def strong() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("CONTENT_", "SHARING_", "METRICS_", "GAMIFICATION_", "JWT_", "DEV_MODE", "DATABASE_URL")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("value", WEAK.values(), ids=WEAK.keys())
def test_each_weak_form_is_named(value: str) -> None:
    assert weakness(value)


def test_a_private_value_of_32_bytes_or_more_is_accepted() -> None:
    assert weakness(strong()) is None
    assert weakness("é" * (MIN_BYTES // 2)) is None  # bytes, not characters, are counted
    assert (
        weakness("é" * (MIN_BYTES // 2 - 1) + "x") == f"is {MIN_BYTES - 1} bytes long; at least {MIN_BYTES} are needed"
    )


@pytest.mark.parametrize("field", ["visitor_secret", "click_id_secret"])
@pytest.mark.parametrize("value", WEAK.values(), ids=WEAK.keys())
def test_sharing_refuses_a_weak_key_outside_dev_mode_naming_its_variable(field: str, value: str) -> None:
    keys = {"visitor_secret": strong(), "click_id_secret": strong(), field: value}
    with pytest.raises(ValidationError) as caught:
        SharingSettings(**PROD, **keys)
    line = settings_error_line(SharingSettings, caught.value)
    assert f"SHARING_{field.upper()}" in line and "\n" not in line
    assert value.strip() == "" or value not in line  # the refusal never echoes the value


def test_sharing_defaults_are_refused_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="SHARING_VISITOR_SECRET is a published default"):
        SharingSettings(**PROD)


def test_good_keys_are_accepted_outside_dev_mode() -> None:
    s = SharingSettings(**PROD, visitor_secret=strong(), click_id_secret=strong())
    assert s.dev_mode is False
    g = GamificationSettings(**PROD, stream_ticket_secret=strong())
    assert g.stream_ticket_secret is not None


def test_dev_mode_allows_the_dev_defaults_and_weak_values() -> None:
    assert SharingSettings(dev_mode=True).visitor_secret == "dev-visitor-secret"
    assert SharingSettings(dev_mode=True, click_id_secret="x").click_id_secret == "x"
    assert GamificationSettings(dev_mode=True, stream_ticket_secret="short").stream_ticket_secret is not None


def test_the_stream_ticket_secret_itself_is_checked_not_its_digest() -> None:
    """Unset, the service makes a random key and keeps it in its database; set, the secret (not the
    32-byte SHA-256 the signer derives from it) must be strong."""
    assert GamificationSettings(**PROD).stream_ticket_secret is None
    for value in WEAK.values():
        if value.strip():
            with pytest.raises(ValidationError, match="GAMIFICATION_STREAM_TICKET_SECRET"):
                GamificationSettings(**PROD, stream_ticket_secret=value)


def test_the_database_url_is_checked_for_presence_only() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL must be set"):
        ContentSettings(**{**PROD, "database_url": ""})
    assert ContentSettings(**{**PROD, "database_url": "postgresql+asyncpg://u:short@db/x"}).database_url


def test_every_secret_or_key_field_is_marked_and_its_default_published() -> None:
    """A new ``*_secret`` / ``*_key`` setting is checked without anyone remembering to: it must carry
    the SigningKey mark, and a default it ships with is on the list of refused values."""
    for cls in CLASSES:
        marked = marked_fields(cls)
        for name in cls.model_fields:
            if re.search(r"(secret|_key|pepper|salt)$", name):
                assert name in marked, f"{cls.__name__}.{name} is a secret but not marked SigningKey"
        for name in marked:
            default = cls.model_fields[name].default
            value = default.get_secret_value() if hasattr(default, "get_secret_value") else default
            assert value is None or value in PUBLISHED_DEFAULTS, f"{env_name(cls, name)}: default not listed"


def test_no_tracked_file_ships_a_literal_secret_missing_from_the_list() -> None:
    """docker-compose.yml, the overlays, docs: a literal value given to a ``*_SECRET`` variable is a
    published default, and so refused at start."""
    files = subprocess.run(
        ["git", "ls-files", "*.yml", "*.yaml", "*.md", "*.env", "*.toml", "Makefile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    literal = re.compile(r"[A-Z_]*SECRET[A-Z_]*\s*[=:]\s*(?:\$\{\w+:?-)?['\"]?([A-Za-z0-9_.+/=-]{6,})")
    found = set()
    for f in files:
        path = ROOT / f
        if path.is_file():
            for m in literal.finditer(path.read_text(errors="replace")):
                found.add((f, m.group(1)))
    unknown = {(f, v) for f, v in found if v not in PUBLISHED_DEFAULTS and not v.startswith("$")}
    assert not unknown, unknown


def test_an_invalid_setting_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        SharingSettings(**PROD, visitor_secret=strong(), click_id_secret=strong(), port="eighty")
    line = settings_error_line(SharingSettings, caught.value)
    assert line.startswith("sharing: cannot start: SHARING_PORT: ") and "\n" not in line
