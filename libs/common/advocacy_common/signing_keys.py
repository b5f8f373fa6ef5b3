"""The keys the platform itself signs with, refused at start when weak (issue 13).

Click ids, the visitor hash, stream tickets... are HMACs under a key from the settings. Whoever holds
the key forges them; so outside dev mode a key is refused when it is

- unset (or blank),
- a value published anywhere: a default in this repository's code, ``docker-compose.yml``, the
  Kubernetes overlays or the docs (anyone who read the repository has it), or a placeholder
  (``...change-me``),
- shorter than :data:`MIN_BYTES` (an HMAC-SHA256 key shorter than the digest weakens it; RFC 2104
  section 3).

A settings field is marked as such a key with :class:`SigningKey` in its ``Annotated`` metadata;
``ServiceSettings`` checks every marked field of its class outside dev mode, and the error names the
environment variable. Credentials other systems issue (the database URL) are checked for presence
only, by the settings themselves: their strength is that system's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from advocacy_common.action_links import DEV_PRIVATE_KEY as DEV_ACTION_LINK_PRIVATE_KEY
from advocacy_common.action_links import DEV_PUBLIC_KEY as DEV_ACTION_LINK_PUBLIC_KEY

#: At least the size of an HMAC-SHA256 digest. ``secrets.token_urlsafe(32)`` gives 43 characters.
MIN_BYTES = 32

#: How to make one (quoted in every refusal and in the docs).
GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

# The dev defaults in the services' settings (kept here so this list is complete; a unit test checks
# every marked field's default is in it).
DEV_VISITOR_SECRET = "dev-visitor-secret"
DEV_CLICK_ID_SECRET = "dev-click-id-secret"

#: Every signing-key value that has appeared in this repository (code, compose, overlays, docs,
#: tests' fixtures). tests/unit/test_signing_keys.py fails when a tracked file holds a literal
#: ``*_SECRET`` value missing from here.
PUBLISHED_DEFAULTS: frozenset[str] = frozenset(
    {
        DEV_VISITOR_SECRET,
        DEV_CLICK_ID_SECRET,
        # the one-click share links' dev key pair (advocacy_common.action_links): the public half
        # too, as a service trusting it accepts links anyone signs with the published private half
        DEV_ACTION_LINK_PRIVATE_KEY,
        DEV_ACTION_LINK_PUBLIC_KEY,
        # docker-compose.yml until issue 13
        "compose-visitor-secret-change-me",
        "compose-click-id-secret-change-me",
        # deploy/k8s/overlays/dev until issue 13
        "dev-cluster-visitor-secret",
        "dev-cluster-click-id-secret",
    }
)

#: Words that mark a value as a placeholder someone forgot to replace.
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """Marks a settings field as a key the platform signs with.

    ``generated_when_unset``: the service makes a strong random key itself when none is configured
    (and shares it between replicas), so unset is allowed; a value that is set must still be strong.
    """

    generated_when_unset: bool = False


class WeakSigningKey(ValueError):
    """A signing key that must not be used outside dev mode; the message names its variable."""


def weakness(value: str | None) -> str | None:
    """Why ``value`` may not be a signing key, or None when it may."""
    if value is None or not value.strip():
        return "is not set"
    lowered = value.strip().lower()
    if value in PUBLISHED_DEFAULTS or lowered in PUBLISHED_DEFAULTS or any(w in lowered for w in PLACEHOLDER_WORDS):
        return "is a published default"
    size = len(value.encode())
    if size < MIN_BYTES:
        return f"is {size} bytes long; at least {MIN_BYTES} are needed"
    return None


def marked_fields(settings_class: type[BaseSettings]) -> dict[str, SigningKey]:
    """The fields of ``settings_class`` marked :class:`SigningKey`, by field name."""
    out: dict[str, SigningKey] = {}
    for name, field in settings_class.model_fields.items():
        for meta in field.metadata:
            if isinstance(meta, SigningKey):
                out[name] = meta
    return out


def env_name(settings_class: type[BaseSettings], field_name: str) -> str:
    """The environment variable a field is read from (the class's prefix + the name, upper case)."""
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    return f"{prefix}{field_name}".upper()


def refuse_weak(settings: BaseSettings) -> None:
    """Raise :class:`WeakSigningKey` naming the first marked field whose value is weak."""
    cls = type(settings)
    for name, mark in marked_fields(cls).items():
        value = _plain(getattr(settings, name))
        if value is None and mark.generated_when_unset:
            continue
        reason = weakness(value)
        if reason is not None:
            raise WeakSigningKey(
                f"{env_name(cls, name)} {reason} (outside dev mode a signing key must be a private value of "
                f"at least {MIN_BYTES} bytes; make one with {GENERATE})"
            )


def _plain(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return None if value is None else str(value)
