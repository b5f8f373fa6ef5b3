"""Claim mapping: an identity provider's token claims onto a :class:`Principal` (issue 17).

Real identity providers do not emit our claim names: Entra ID puts app roles in ``roles`` and the
tenant in ``tid`` (a GUID) and names the person by ``oid``; Okta lists ``groups``; Keycloak nests
roles in ``realm_access.roles``; Google ID tokens carry no roles at all, only the Workspace domain in
``hd``. An :class:`IssuerConfig` (one entry of ``AUTH_ISSUERS``) says where each principal field comes
from, and :func:`map_claims` applies it to claims whose signature, issuer, audience and lifetime the
verifier has already checked.

Pure: no FastAPI, no I/O. A token that does not map is a value, :class:`MappingError`, naming the
claim at fault; the verifier logs that name and answers 401 without it.

Every claim is hostile input even when signed (an IdP copies user-editable attributes into tokens):
paths are at most :data:`MAX_PATH_DEPTH` deep, at most :data:`MAX_VALUES` values of a list claim are
looked at, and strings are bounded (:data:`MAX_VALUE_LENGTH`...).

Tenants. A tenant id is ours (:data:`TENANT_ID_PATTERN`): short, lower-case, safe in a Kafka topic
name (``advocacy.partner.<tenant>``), a URL and a log line. An identity provider's tenant (an Entra
GUID, a Google Workspace domain) is never taken as ours as it is: each issuer either names a fixed
tenant (one tenant per issuer: Entra's and Okta's issuers are per organisation already) or a
``tenant_map`` from claim values to tenant ids (several tenants behind one issuer, or Google, whose
issuer is the same for every Google account: without ``hd`` mapped anyone with a Gmail address
would get in). A value not in the map is refused; a list claim whose values map to two tenants is
ambiguous and refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .principal import ADMIN, COACH, EMPLOYEE, KNOWN_ROLES, PARTNER, Principal, _expiry

#: Our tenant ids: what a fixed tenant or a ``tenant_map`` value may be. A DNS label (1-63 of a-z,
#: 0-9 and "-", not starting with "-"): a lower-case GUID fits, and so does every id in use today.
TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_TENANT_ID = re.compile(TENANT_ID_PATTERN)

#: A claim path is at most this many names deep (``realm_access.roles`` is 2).
MAX_PATH_DEPTH = 4
MAX_CLAIM_NAME_LENGTH = 128
#: At most this many values of a list claim (roles, groups, a tenant list) are looked at; the rest
#: are ignored. Entra stops emitting groups at 200 (it sends an overage link instead), Okta at 100.
MAX_VALUES = 256
#: A value longer than this (a role, a group, a tenant claim) is never a match and is skipped.
MAX_VALUE_LENGTH = 256
#: The subject is the employee id everywhere: longer is refused, not cut (two people must not merge).
MAX_SUBJECT_LENGTH = 256
#: A display name is cut to this; a team longer than this is left out (cutting could merge teams).
MAX_NAME_LENGTH = 200
MAX_TEAM_LENGTH = 100
#: Bounds of the configuration itself.
MAX_ROLE_MAP = 200
MAX_TENANT_MAP = 10_000
MAX_ISSUERS = 50

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MappingError:
    """Why a verified token names no principal: the claim at fault (its dotted path) and how."""

    claim: str
    reason: str


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Where each principal field comes from in one issuer's tokens (built by :meth:`IssuerConfig.mapping`).

    ``tenant_map`` None: the tenant claim's value is the tenant id as it is (our own issuer only).
    ``role_map`` None: the role claim's values that are our role names count as themselves.
    """

    subject: Path = ("sub",)
    tenant: Path | None = ("tid",)
    tenant_map: Mapping[str, str] | None = None
    fixed_tenant: str | None = None
    roles: Path | None = ("roles",)
    role_map: Mapping[str, str] | None = None
    default_role: str | None = None
    name: Path | None = ("name",)
    team: Path | None = ("team",)


def map_claims(claims: Mapping[str, Any], mapping: ClaimMapping) -> Principal | MappingError:
    """The principal ``claims`` name under ``mapping``, or the first claim that does not map."""
    subject = _lookup(claims, mapping.subject)
    if subject is _MISSING:
        return MappingError(_label(mapping.subject), "missing")
    if not isinstance(subject, str) or not subject:
        return MappingError(_label(mapping.subject), "not a non-empty string")
    if len(subject) > MAX_SUBJECT_LENGTH:
        return MappingError(_label(mapping.subject), f"longer than {MAX_SUBJECT_LENGTH} characters")
    tenant = _tenant(claims, mapping)
    if isinstance(tenant, MappingError):
        return tenant
    roles = _roles(claims, mapping)
    if isinstance(roles, MappingError):
        return roles
    name = _optional_string(claims, mapping.name)
    team = _optional_string(claims, mapping.team)
    return Principal(
        sub=subject,
        tenant_id=tenant,
        roles=roles,
        team=team if team is not None and len(team) <= MAX_TEAM_LENGTH else None,
        name=name[:MAX_NAME_LENGTH] if name is not None else None,
        expires_at=_expiry(claims.get("exp")),
    )


def _tenant(claims: Mapping[str, Any], mapping: ClaimMapping) -> str | MappingError:
    if mapping.fixed_tenant is not None:
        return mapping.fixed_tenant
    if mapping.tenant is None:  # IssuerConfig refuses this; a hand-built mapping may not
        return MappingError("tenant", "no tenant claim and no fixed tenant configured")
    where = _label(mapping.tenant)
    value = _lookup(claims, mapping.tenant)
    if value is _MISSING or value is None or value == "" or value == []:
        return MappingError(where, "missing")
    values = _strings(value)
    if values is None:
        return MappingError(where, "not a string or a list of strings")
    if mapping.tenant_map is None:
        found = {v for v in values if _TENANT_ID.match(v)}
    else:
        found = {mapping.tenant_map[v] for v in values if v in mapping.tenant_map}
    if not found:
        return MappingError(where, "no value maps to a tenant")
    if len(found) > 1:
        return MappingError(where, "ambiguous: values map to more than one tenant")
    return found.pop()


def _roles(claims: Mapping[str, Any], mapping: ClaimMapping) -> frozenset[str] | MappingError:
    roles: set[str] = set()
    where = _label(mapping.roles) if mapping.roles is not None else "roles"
    value = _MISSING if mapping.roles is None else _lookup(claims, mapping.roles)
    if value is not _MISSING and value is not None:
        values = _strings(value)
        if values is None:
            return MappingError(where, "not a string or a list of strings")
        if mapping.role_map is None:
            roles = set(values) & KNOWN_ROLES
        else:
            roles = {mapping.role_map[v] for v in values if v in mapping.role_map}
    if roles:
        return frozenset(roles)
    if mapping.default_role is not None:
        return frozenset({mapping.default_role})
    if value is _MISSING or value is None:
        return MappingError(where, "missing")
    return MappingError(where, "no value maps to a role")


class _Missing:
    pass


_MISSING: Any = _Missing()


def _lookup(claims: Mapping[str, Any], path: Path) -> Any:
    node: Any = claims.get(path[0], _MISSING)
    for name in path[1:MAX_PATH_DEPTH]:  # below the top, JSON objects: dicts (no ABC check per step)
        if not isinstance(node, dict) or name not in node:
            return _MISSING
        node = node[name]
    return node


def _strings(value: object) -> list[str] | None:
    """A string or a list's first :data:`MAX_VALUES` items, strings within :data:`MAX_VALUE_LENGTH`
    only (anything else in the list is skipped); None if ``value`` is neither a string nor a list."""
    if isinstance(value, str):
        return [value] if len(value) <= MAX_VALUE_LENGTH else []
    if not isinstance(value, list):
        return None
    return [v for v in value[:MAX_VALUES] if isinstance(v, str) and 0 < len(v) <= MAX_VALUE_LENGTH]


def _optional_string(claims: Mapping[str, Any], path: Path | None) -> str | None:
    if path is None:
        return None
    value = _lookup(claims, path)
    return value if isinstance(value, str) and value else None


def _label(path: Path) -> str:
    return ".".join(path)


# --- configuration: one entry of AUTH_ISSUERS ------------------------------------------------------

Role = Literal["admin", "employee", "coach", "partner"]
Preset = Literal["entra", "okta", "keycloak", "google"]
TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN)]
ClaimName = Annotated[str, Field(min_length=1, max_length=MAX_CLAIM_NAME_LENGTH)]
#: ``"realm_access.roles"`` (dots separate names), or a list of names for a claim whose own name has a
#: dot (``["https://example.com/claims", "roles"]``).
ClaimPath = (
    Annotated[str, Field(min_length=1, max_length=MAX_PATH_DEPTH * 130)]
    | Annotated[list[ClaimName], Field(min_length=1, max_length=MAX_PATH_DEPTH)]
)

#: The ready-made mappings (docs/identity.md). An entry's own fields override its preset's; an
#: operator's ``role_map`` replaces the preset's whole.
PRESETS: dict[str, dict[str, Any]] = {
    # Access tokens (v2) of an app registration: app roles in "roles", the directory in "tid" (a GUID),
    # "oid" the user's object id in that directory (the same across apps, unlike the pairwise "sub").
    "entra": {
        "subject_claim": "oid",
        "tenant_claim": "tid",
        "roles_claim": "roles",
        "role_map": {
            "Advocacy.Admin": ADMIN,
            "Advocacy.Employee": EMPLOYEE,
            "Advocacy.Coach": COACH,
            "Advocacy.Partner": PARTNER,
        },
        "name_claim": "name",
        "team_claim": None,
    },
    # An authorization server with a "groups" claim (Okta's groups claim filter, e.g. starts with
    # "Advocacy"); one Okta org per issuer, so a fixed tenant unless a custom tenant claim is mapped.
    "okta": {
        "subject_claim": "sub",
        "tenant_claim": None,
        "roles_claim": "groups",
        "role_map": {
            "Advocacy Admins": ADMIN,
            "Advocacy Employees": EMPLOYEE,
            "Advocacy Coaches": COACH,
            "Advocacy Partners": PARTNER,
        },
        "name_claim": "name",
        "team_claim": None,
    },
    # A realm: realm roles in "realm_access.roles", one realm per issuer.
    "keycloak": {
        "subject_claim": "sub",
        "tenant_claim": None,
        "roles_claim": "realm_access.roles",
        "role_map": {
            "advocacy-admin": ADMIN,
            "advocacy-employee": EMPLOYEE,
            "advocacy-coach": COACH,
            "advocacy-partner": PARTNER,
        },
        "name_claim": "preferred_username",
        "team_claim": None,
    },
    # Google ID tokens: no roles or groups; the Workspace domain in "hd" (absent for Gmail accounts).
    "google": {
        "subject_claim": "sub",
        "tenant_claim": "hd",
        "roles_claim": None,
        "role_map": None,
        "default_role": EMPLOYEE,
        "name_claim": "name",
        "team_claim": None,
    },
}

#: Without a preset: our own claim names.
_GENERIC: dict[str, Any] = {
    "subject_claim": "sub",
    "tenant_claim": "tid",
    "roles_claim": "roles",
    "role_map": None,
    "default_role": None,
    "name_claim": "name",
    "team_claim": "team",
}


class IssuerConfig(BaseModel):
    """One trusted issuer: where its keys are, what audience its tokens carry, and how its claims map.

    A field left out takes the preset's value (or our own claim names without a preset); ``null``
    turns an optional claim off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Preset | None = None
    issuer: str = Field(min_length=1, max_length=2048)
    audience: str = Field(min_length=1, max_length=2048)
    jwks_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    jwks_path: str | None = Field(default=None, max_length=4096)

    subject_claim: ClaimPath = "sub"
    tenant_claim: ClaimPath | None = None
    tenant_map: dict[Annotated[str, Field(max_length=MAX_VALUE_LENGTH)], TenantId] | None = Field(
        default=None, max_length=MAX_TENANT_MAP
    )
    fixed_tenant: TenantId | None = None
    roles_claim: ClaimPath | None = None
    role_map: dict[Annotated[str, Field(min_length=1, max_length=MAX_VALUE_LENGTH)], Role] | None = Field(
        default=None, max_length=MAX_ROLE_MAP
    )
    default_role: Role | None = None
    name_claim: ClaimPath | None = None
    team_claim: ClaimPath | None = None

    @model_validator(mode="after")
    def _complete(self) -> IssuerConfig:
        base = PRESETS[self.preset] if self.preset else _GENERIC
        for name, value in base.items():
            if name not in self.model_fields_set:
                object.__setattr__(self, name, value)  # frozen model: filled once, here
        if not (self.jwks_url or self.jwks_path):
            raise ValueError("jwks_url (or jwks_path) is required")
        if self.fixed_tenant is not None:
            if "tenant_claim" in self.model_fields_set and self.tenant_claim is not None:
                raise ValueError("set fixed_tenant or tenant_claim, not both")
            if self.tenant_map is not None:
                raise ValueError("set fixed_tenant or tenant_map, not both")
            if self.preset == "google":
                raise ValueError(
                    "google: every Google account has the same issuer, so a fixed tenant would let in any of"
                    ' them; map the Workspace domain instead: "tenant_map": {"example.com": "<tenant id>"}'
                )
            object.__setattr__(self, "tenant_claim", None)
        elif self.tenant_claim is None:
            raise ValueError('no tenant: set "fixed_tenant" (one tenant per issuer) or "tenant_claim" and "tenant_map"')
        elif not self.tenant_map:
            raise ValueError(
                f'the tenant claim {_label(_path(self.tenant_claim))!r} needs a "tenant_map" (claim value ->'
                ' tenant id), or set "fixed_tenant": an identity provider\'s tenant is never taken as ours as it is'
            )
        if self.roles_claim is None and self.default_role is None:
            raise ValueError('no roles: set "roles_claim" (and "role_map") or "default_role"')
        for name in ("subject_claim", "tenant_claim", "roles_claim", "name_claim", "team_claim"):
            value = getattr(self, name)
            if value is not None:
                path = _path(value)
                if len(path) > MAX_PATH_DEPTH or not all(0 < len(p) <= MAX_CLAIM_NAME_LENGTH for p in path):
                    raise ValueError(f"{name}: at most {MAX_PATH_DEPTH} names of 1-{MAX_CLAIM_NAME_LENGTH} characters")
        return self

    def mapping(self) -> ClaimMapping:
        def opt(value: str | list[str] | None) -> Path | None:
            return None if value is None else _path(value)

        return ClaimMapping(
            subject=_path(self.subject_claim),
            tenant=opt(self.tenant_claim),
            tenant_map=dict(self.tenant_map) if self.tenant_map is not None else None,
            fixed_tenant=self.fixed_tenant,
            roles=opt(self.roles_claim),
            role_map=dict(self.role_map) if self.role_map is not None else None,
            default_role=self.default_role,
            name=opt(self.name_claim),
            team=opt(self.team_claim),
        )


def _path(value: str | list[str]) -> Path:
    return tuple(value.split(".")) if isinstance(value, str) else tuple(value)


def parse_issuers(raw: object, *, setting: str = "AUTH_ISSUERS") -> tuple[IssuerConfig, ...]:
    """The entries of ``AUTH_ISSUERS`` (a JSON list of objects), or ValueError naming the entry and field."""
    if not isinstance(raw, list):
        raise ValueError(f"{setting}: expected a JSON list of issuer objects")
    if len(raw) > MAX_ISSUERS:
        raise ValueError(f"{setting}: at most {MAX_ISSUERS} issuers")
    out: list[IssuerConfig] = []
    for i, entry in enumerate(raw):
        label = f"{setting}[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("issuer"), str):
            label += f" ({entry['issuer'][:200]})"
        try:
            config = IssuerConfig.model_validate(entry)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
                for err in e.errors(include_url=False)
            )
            raise ValueError(f"{label}: {problems.replace('Value error, ', '')}") from None
        if any(c.issuer == config.issuer for c in out):
            raise ValueError(f"{label}: the issuer is listed twice")
        out.append(config)
    return tuple(out)
