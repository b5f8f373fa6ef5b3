"""Dev login: a token for any tenant, person and role, signed with the dev stack's key (the one
``make run`` creates and the services trust in dev mode). Off unless ``DEV_MODE`` and the key is
there; production logs in through the company's identity provider instead."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from advocacy_common.auth.devkeys import JWKS_FILE, PRIVATE_KEY_FILE, DevKeys, mint_token
from advocacy_console.sessions import Person

ROLES = ("employee", "admin", "coach")
# What the services accept as ids and team names (letters, digits, a few separators), bounded.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MAX_NAME = 100


class BadLogin(ValueError):
    """A field of the login form is missing or malformed (the message says which)."""


@dataclass(frozen=True, slots=True)
class DevLogin:
    tenant: str
    sub: str
    role: str
    team: str | None
    name: str | None

    @classmethod
    def parse(cls, form: dict[str, str]) -> DevLogin:
        tenant, sub = form.get("tenant", "").strip(), form.get("sub", "").strip()
        role = form.get("role", "")
        team = form.get("team", "").strip() or None
        name = form.get("name", "").strip() or None
        for label, value in (("tenant", tenant), ("person", sub)):
            if not _ID.match(value):
                raise BadLogin(f"{label}: 1-64 letters, digits or . _ @ -, starting with a letter or digit")
        if team is not None and not _ID.match(team):
            raise BadLogin("team: 1-64 letters, digits or . _ @ -")
        if role not in ROLES:
            raise BadLogin(f"role: one of {', '.join(ROLES)}")
        if name is not None and len(name) > MAX_NAME:
            raise BadLogin(f"name: at most {MAX_NAME} characters")
        return cls(tenant, sub, role, team, name)


def dev_keys(keys_dir: Path | None) -> DevKeys | None:
    """The dev stack's key when it exists (never created here: a key the services do not trust
    would sign tokens nobody accepts)."""
    if keys_dir is None:
        return None
    private, jwks = keys_dir / PRIVATE_KEY_FILE, keys_dir / JWKS_FILE
    if not private.is_file() or not jwks.is_file():
        return None
    import json

    kid = json.loads(private.read_text(encoding="utf-8")).get("kid")
    return DevKeys(private_path=private, jwks_path=jwks, kid=str(kid)) if kid else None


def issue(keys: DevKeys, login: DevLogin, ttl_seconds: int, *, issuer: str, audience: str) -> tuple[str, Person, float]:
    """The token, the person it names and when it expires (epoch seconds)."""
    now = int(time.time())
    token = mint_token(
        keys,
        issuer=issuer,
        audience=audience,
        tenant=login.tenant,
        sub=login.sub,
        roles=[login.role],
        team=login.team,
        name=login.name,
        ttl_seconds=ttl_seconds,
        now=now,
    )
    person = Person(tenant=login.tenant, sub=login.sub, roles=(login.role,), team=login.team, name=login.name)
    return token, person, float(now + ttl_seconds)
