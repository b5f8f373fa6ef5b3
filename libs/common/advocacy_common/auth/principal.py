"""Who is calling: the verified identity every request handler works with.

A :class:`Principal` is built only from the claims of a token whose signature, issuer, audience
and lifetime have already been checked (see :mod:`.verifier`). Handlers take the tenant from
here and nowhere else: the tenant never comes from the path or the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ADMIN = "admin"
EMPLOYEE = "employee"
COACH = "coach"
PARTNER = "partner"

#: The roles a token may grant. Anything else in the ``roles`` claim is dropped, so an identity
#: provider that adds its own roles (``offline_access``...) cannot grant anything by accident.
KNOWN_ROLES: frozenset[str] = frozenset({ADMIN, EMPLOYEE, COACH, PARTNER})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: an employee (or partner) of one tenant, with the roles the token grants."""

    sub: str
    tenant_id: str
    roles: frozenset[str]
    team: str | None = None
    name: str | None = None
    #: When the token behind this principal stops being valid (its ``exp``): what outlives the
    #: request, such as a live stream, ends there.
    expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_any_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """Build a principal from verified claims.

        Raises :class:`ValueError` (with a message fit for the caller) when a claim we rely on
        has the wrong shape. A malformed ``roles`` claim is an error rather than "no roles",
        because it more likely means a misconfigured issuer than a deliberate empty grant.
        """
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise ValueError("token claim 'sub' is missing or not a string")
        tid = claims.get("tid")
        if not isinstance(tid, str) or not tid:
            raise ValueError("token claim 'tid' is missing or not a string")
        return cls(
            sub=sub,
            tenant_id=tid,
            roles=_roles(claims.get("roles")),
            team=_optional_str(claims, "team"),
            name=_optional_str(claims, "name"),
            expires_at=_expiry(claims.get("exp")),
        )


def _roles(value: object) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ValueError("token claim 'roles' must be a list of strings")
    return frozenset(value) & KNOWN_ROLES


def _expiry(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # the verifier requires and checks ``exp``; a principal built otherwise has none
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"token claim {name!r} must be a string")
