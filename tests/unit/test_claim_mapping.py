"""Claim mapping (issue 17): an identity provider's claims onto a principal, several issuers at once.

- Each ready-made mapping (Entra ID, Okta, Keycloak, Google) accepts its realistic fixture token, signed
  with a test key and checked by the real verifier, and refuses the same token without its role claim
  (Google, which has none, without its ``hd``) with a 401 whose log line names the claim.
- ``map_claims`` itself: value maps, default roles, ambiguous tenants, hostile sizes.
- ``AUTH_ISSUERS`` is checked at start, with errors naming the entry and the field; without it nothing
  changes (the ``JWT_*`` issuer alone, our own claim names).
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from advocacy_common.auth import JWTVerifier, Principal, ensure_dev_keys, mint_token
from advocacy_common.auth.claims import (
    MAX_VALUES,
    ClaimMapping,
    IssuerConfig,
    MappingError,
    map_claims,
    parse_issuers,
)
from advocacy_common.auth.issuers import TrustedIssuers, build_verifier
from advocacy_common.auth.verifier import UNMAPPED
from advocacy_common.errors import Unauthorized
from advocacy_common.settings import DEV_ISSUER, ServiceSettings, settings_error_line
from tests.support.idp import TestIssuer, fixture, fixture_token

pytestmark = pytest.mark.unit

ENTRA_TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
# Claim names the presets read, and a few others, for the fuzzed claims below.
_NAMES = ["sub", "oid", "tid", "hd", "roles", "groups", "realm_access", "name", "preferred_username", "exp", "x"]

# Per preset: the AUTH_ISSUERS entry an operator writes, the principal the fixture must give, and the
# claim whose absence must be refused.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "entra": (
        {"tenant_map": {ENTRA_TID: "contoso"}},
        {
            "sub": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
            "tenant_id": "contoso",
            "roles": {"employee", "coach"},
            "name": "Adele Vance",
        },
        "roles",
    ),
    "okta": (
        {"fixed_tenant": "acme"},
        {"sub": "isaac.brock@acme.example", "tenant_id": "acme", "roles": {"admin"}, "name": "Isaac Brock"},
        "groups",
    ),
    "keycloak": (
        {"fixed_tenant": "acme"},
        {"sub": "f3c2a1b0-9d8e-4f7a-8b6c-5d4e3f2a1b0c", "tenant_id": "acme", "roles": {"employee"}, "name": "mcurie"},
        "realm_access.roles",
    ),
    # Google tokens carry no roles: everyone gets the default role; what must be there is "hd".
    "google": (
        {"tenant_map": {"acme.example": "acme"}},
        {"sub": "110169484474386276334", "tenant_id": "acme", "roles": {"employee"}, "name": "Grace Hopper"},
        "hd",
    ),
}


@pytest.fixture(scope="module")
def idp() -> TestIssuer:
    return TestIssuer()


def _entry(preset: str, jwks_path: str, **extra: Any) -> IssuerConfig:
    _, claims = fixture(preset)
    aud = claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]
    return IssuerConfig.model_validate(
        {
            "preset": preset,
            "issuer": claims["iss"],
            "audience": aud,
            "jwks_path": jwks_path,
            **CASES[preset][0],
            **extra,
        }
    )


def _verifier(preset: str, idp: TestIssuer, tmp_path: Path) -> JWTVerifier:
    config = _entry(preset, idp.write_jwks(tmp_path / "jwks.json"))
    return JWTVerifier(config.issuer, config.audience, jwks_path=config.jwks_path, mapping=config.mapping())


@pytest.mark.parametrize("preset", list(CASES))
def test_each_preset_accepts_its_fixture_token(preset: str, idp: TestIssuer, tmp_path: Path) -> None:
    principal = _verifier(preset, idp, tmp_path).verify(fixture_token(idp, preset))
    expected = CASES[preset][1]
    assert (principal.sub, principal.tenant_id, set(principal.roles), principal.name, principal.team) == (
        expected["sub"],
        expected["tenant_id"],
        expected["roles"],
        expected["name"],
        None,
    )
    assert isinstance(principal.expires_at, datetime)


@pytest.mark.parametrize("preset", list(CASES))
def test_each_preset_refuses_its_fixture_without_the_role_claim(
    preset: str, idp: TestIssuer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = CASES[preset][2]
    verifier = _verifier(preset, idp, tmp_path)
    with caplog.at_level(logging.WARNING, logger="advocacy.auth"), pytest.raises(Unauthorized) as caught:
        verifier.verify(fixture_token(idp, preset, drop=(missing,)))
    assert caught.value.status_code == 401 and caught.value.message == UNMAPPED
    assert missing not in caught.value.message  # the caller is not told how the issuer is mapped
    [record] = [r for r in caplog.records if r.name == "advocacy.auth"]
    assert (record.__dict__["claim"], record.__dict__["reason"], record.__dict__["issuer"]) == (
        missing,
        "missing",
        verifier.issuer,
    )


def test_a_role_claim_with_no_mapped_value_is_refused(idp: TestIssuer, tmp_path: Path) -> None:
    verifier = _verifier("okta", idp, tmp_path)
    with pytest.raises(Unauthorized, match="do not name"):
        verifier.verify(fixture_token(idp, "okta", groups=["Everyone", "Sales EMEA"]))


def test_a_fixture_of_another_tenant_is_refused(idp: TestIssuer, tmp_path: Path) -> None:
    google = _verifier("google", idp, tmp_path)
    with pytest.raises(Unauthorized, match="do not name"):
        google.verify(fixture_token(idp, "google", hd="gmail-is-not-us.example"))
    entra = _verifier("entra", idp, tmp_path)
    with pytest.raises(Unauthorized, match="do not name"):
        entra.verify(fixture_token(idp, "entra", tid="00000000-0000-0000-0000-000000000001"))


# --- map_claims ------------------------------------------------------------------------------------


def _map(claims: dict[str, Any], **mapping: Any) -> Principal | MappingError:
    base: dict[str, Any] = {"fixed_tenant": "acme", "roles": ("groups",), "role_map": {"Admins": "admin"}}
    return map_claims({"sub": "s", **claims}, ClaimMapping(**{**base, **mapping}))


def test_several_values_may_map_to_one_role_and_unknown_values_are_ignored() -> None:
    role_map = {"Advocacy Admins": "admin", "IT Admins": "admin", "Staff": "employee"}
    p = _map({"groups": ["IT Admins", "Advocacy Admins", "Everyone", 7, None]}, role_map=role_map)
    assert isinstance(p, Principal) and p.roles == {"admin"}
    assert _map({"groups": "Staff"}, role_map=role_map) == Principal(
        sub="s", tenant_id="acme", roles=frozenset({"employee"})
    )
    assert _map({"groups": ["Everyone"]}, role_map=role_map) == MappingError("groups", "no value maps to a role")
    assert _map({"groups": {"a": 1}}) == MappingError("groups", "not a string or a list of strings")


def test_the_default_role_applies_only_when_nothing_maps() -> None:
    assert _map({}, default_role="employee").roles == {"employee"}  # type: ignore[union-attr]
    assert _map({"groups": ["Nobody"]}, default_role="employee").roles == {"employee"}  # type: ignore[union-attr]
    assert _map({"groups": ["Admins"]}, default_role="employee").roles == {"admin"}  # type: ignore[union-attr]


def test_tenant_from_a_claim_through_its_map() -> None:
    tenant_map = {"g-1": "acme", "g-1b": "acme", "g-2": "globex"}
    common = {"fixed_tenant": None, "tenant": ("tenants",), "tenant_map": tenant_map}
    ok = _map({"tenants": ["x", "g-1", "g-1b"], "groups": ["Admins"]}, **common)
    assert isinstance(ok, Principal) and ok.tenant_id == "acme"
    assert _map({"tenants": ["g-1", "g-2"], "groups": ["Admins"]}, **common) == MappingError(
        "tenants", "ambiguous: values map to more than one tenant"
    )
    assert _map({"tenants": "g-9", "groups": ["Admins"]}, **common) == MappingError(
        "tenants", "no value maps to a tenant"
    )
    absents: list[dict[str, Any]] = [{}, {"tenants": None}, {"tenants": ""}, {"tenants": []}]
    for absent in absents:
        assert _map({**absent, "groups": ["Admins"]}, **common) == MappingError("tenants", "missing")
    # Without a map (a hand-built mapping: our own issuer), the value must already be a tenant id.
    raw = {"fixed_tenant": None, "tenant": ("tid",)}
    assert _map({"tid": "t-1", "groups": ["Admins"]}, **raw).tenant_id == "t-1"  # type: ignore[union-attr]
    assert _map({"tid": "../Acme Corp", "groups": ["Admins"]}, **raw) == MappingError(
        "tid", "no value maps to a tenant"
    )


def test_subject_name_team_and_nested_or_dotted_claim_names() -> None:
    assert _map({"sub": None}) == MappingError("sub", "not a non-empty string")
    assert _map({"sub": "x" * 257, "groups": ["Admins"]}) == MappingError("sub", "longer than 256 characters")
    assert map_claims({"groups": ["Admins"]}, ClaimMapping(fixed_tenant="a", roles=("groups",))) == MappingError(
        "sub", "missing"
    )
    p = _map(
        {"ext": {"org": {"unit": "sales"}}, "https://acme.example/roles": ["Admins"], "name": "N" * 500},
        roles=("https://acme.example/roles",),
        team=("ext", "org", "unit"),
    )
    assert isinstance(p, Principal) and (p.team, p.name, set(p.roles)) == ("sales", "N" * 200, {"admin"})
    long_team = _map({"groups": ["Admins"], "team": "t" * 101}, team=("team",))
    assert isinstance(long_team, Principal) and long_team.team is None  # left out, not cut (teams would merge)


def test_hostile_sizes_are_bounded() -> None:
    # Only the first MAX_VALUES values are looked at, and an over-long value never matches.
    late = ["noise"] * MAX_VALUES + ["Admins"]
    assert _map({"groups": late}) == MappingError("groups", "no value maps to a role")
    long = "A" * 257
    assert _map({"groups": [long]}, role_map={long: "admin"}) == MappingError("groups", "no value maps to a role")
    # A path deeper than allowed is refused in the configuration (below), and never walked deeper.
    deep: dict[str, Any] = {"groups": ["Admins"]}
    for name in "edcba":
        deep = {name: deep}
    assert _map(deep, roles=("a", "b", "c", "d", "e", "groups")) == MappingError(
        "a.b.c.d.e.groups", "not a string or a list of strings"
    )


# --- AUTH_ISSUERS: checked at start ----------------------------------------------------------------

ENTRA = {
    "preset": "entra",
    "issuer": f"https://login.microsoftonline.com/{ENTRA_TID}/v2.0",
    "audience": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "jwks_url": f"https://login.microsoftonline.com/{ENTRA_TID}/discovery/v2.0/keys",
    "tenant_map": {ENTRA_TID: "contoso"},
}


def test_a_preset_fills_what_the_entry_leaves_out() -> None:
    [config] = parse_issuers([ENTRA])
    m = config.mapping()
    assert (m.subject, m.tenant, m.roles, m.name, m.team) == (("oid",), ("tid",), ("roles",), ("name",), None)
    assert m.role_map is not None and m.role_map["Advocacy.Admin"] == "admin"
    custom = parse_issuers([{**ENTRA, "role_map": {"Admins": "admin"}, "team_claim": "department", "name_claim": None}])
    m = custom[0].mapping()
    assert (m.role_map, m.team, m.name) == ({"Admins": "admin"}, ("department",), None)
    keycloak = parse_issuers(
        [{"preset": "keycloak", "issuer": "k", "audience": "a", "jwks_url": "https://k/certs", "fixed_tenant": "acme"}]
    )
    assert keycloak[0].mapping().roles == ("realm_access", "roles")
    dotted = parse_issuers([{**ENTRA, "roles_claim": ["https://acme.example/claims", "roles"]}])
    assert dotted[0].mapping().roles == ("https://acme.example/claims", "roles")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"jwks_url": None}, "jwks_url (or jwks_path) is required"),
        ({"jwks_url": "file:///etc/passwd"}, "jwks_url"),
        ({"tenant_map": None}, 'needs a "tenant_map"'),
        ({"tenant_map": {ENTRA_TID: "Contoso Ltd"}}, "tenant_map"),
        ({"fixed_tenant": "acme"}, "fixed_tenant or tenant_map, not both"),
        ({"role_map": {"Advocacy.Root": "superuser"}}, "role_map"),
        ({"roles_claim": None}, "no roles"),
        ({"role_mapp": {}}, "role_mapp: Extra inputs are not permitted"),
        ({"preset": "auth0"}, "preset"),
        ({"roles_claim": "a.b.c.d.e"}, "at most 4 names"),
        ({"roles_claim": ["a", "b", "c", "d", "e"]}, "roles_claim"),
        ({"tenant_map": {f"v{i}": "t" for i in range(10_001)}}, "tenant_map"),
    ],
)
def test_bad_entries_are_refused_naming_entry_and_field(change: dict[str, Any], fragment: str) -> None:
    entry = {k: v for k, v in {**ENTRA, **change}.items() if v is not None or k not in ("jwks_url", "tenant_map")}
    with pytest.raises(ValueError) as caught:
        parse_issuers([{**ENTRA, "issuer": "https://first.example"}, entry])
    assert str(caught.value).startswith(f"AUTH_ISSUERS[1] ({ENTRA['issuer']}): ")
    assert fragment in str(caught.value)


def test_tenant_rules_of_the_presets() -> None:
    okta = {
        "preset": "okta",
        "issuer": "https://acme.okta.com/oauth2/default",
        "audience": "a",
        "jwks_url": "https://x/k",
    }
    with pytest.raises(ValueError, match="no tenant"):
        parse_issuers([okta])
    assert parse_issuers([{**okta, "fixed_tenant": "acme"}])[0].mapping().fixed_tenant == "acme"
    google = {"preset": "google", "issuer": "https://accounts.google.com", "audience": "a", "jwks_url": "https://x/k"}
    with pytest.raises(ValueError, match="any of them"):
        parse_issuers([{**google, "fixed_tenant": "acme"}])
    with pytest.raises(ValueError, match="tenant_map"):
        parse_issuers([google])
    with pytest.raises(ValueError, match="listed twice"):
        parse_issuers([{**okta, "fixed_tenant": "a"}, {**okta, "fixed_tenant": "b"}])
    with pytest.raises(ValueError, match="JSON list"):
        parse_issuers({"issuer": "x"})


def test_settings_read_auth_issuers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ISSUERS", json.dumps([ENTRA]))
    s = ServiceSettings(database_url="postgresql+asyncpg://u@h/d")  # no JWT_JWKS_*: these issuers are enough
    assert [c.issuer for c in s.trusted_issuers] == [ENTRA["issuer"]]
    monkeypatch.setenv("AUTH_ISSUERS", json.dumps([{**ENTRA, "tenant_map": {ENTRA_TID: "UPPER"}}]))
    with pytest.raises(ValidationError) as caught:
        ServiceSettings(database_url="postgresql+asyncpg://u@h/d")
    line = settings_error_line(ServiceSettings, caught.value)
    assert "AUTH_ISSUERS[0] (https://login.microsoftonline.com/" in line and "tenant_map" in line


def test_settings_guards(tmp_path: Path) -> None:
    db = "postgresql+asyncpg://u@h/d"
    with pytest.raises(ValidationError, match="AUTH_ISSUERS lists the dev issuer"):
        ServiceSettings(database_url=db, auth_issuers=[{**ENTRA, "issuer": DEV_ISSUER}])
    with pytest.raises(ValidationError, match="lists JWT_ISSUER again"):
        ServiceSettings(dev_mode=True, jwt_jwks_path="/k.json", auth_issuers=[{**ENTRA, "issuer": DEV_ISSUER}])
    with pytest.raises(ValidationError, match="or AUTH_ISSUERS"):
        ServiceSettings(database_url=db, jwt_issuer="https://idp.example")
    assert ServiceSettings(dev_mode=True).trusted_issuers == ()


# --- several issuers at once ----------------------------------------------------------------------


def test_several_issuers_each_with_its_keys_and_mapping(idp: TestIssuer, tmp_path: Path) -> None:
    dev = ensure_dev_keys(tmp_path / "dev")
    settings = ServiceSettings(
        dev_mode=True,
        jwt_jwks_path=str(dev.jwks_path),
        auth_issuers=[_entry("entra", idp.write_jwks(tmp_path / "entra.json")).model_dump(exclude_unset=True)],
    )
    verifier = build_verifier(settings)
    assert isinstance(verifier, TrustedIssuers) and verifier.issuers == {DEV_ISSUER, fixture("entra")[1]["iss"]}
    # Our own issuer keeps our own claim names, exactly as before.
    legacy = mint_token(dev, tenant="t-1", sub="e-1", roles=["admin"], team="sales", name="Ada")
    assert verifier.verify(legacy) == JWTVerifier.from_settings(settings).verify(legacy)
    assert verifier.verify(fixture_token(idp, "entra")).tenant_id == "contoso"
    # A token naming one issuer but signed by the other's key: that issuer's keys do not know it.
    forged = mint_token(dev, tenant="contoso", sub="x", roles=["admin"], issuer=fixture("entra")[1]["iss"])
    with pytest.raises(Unauthorized, match="unknown key"):
        verifier.verify(forged)
    stranger = fixture_token(idp, "entra", iss="https://login.microsoftonline.com/common/v2.0")
    with pytest.raises(Unauthorized, match="issuer is not trusted"):
        verifier.verify(stranger)
    assert verifier.key_ids == {dev.kid, idp.kid}


def test_without_auth_issuers_the_verifier_is_the_single_one(tmp_path: Path) -> None:
    dev = ensure_dev_keys(tmp_path / "dev")
    assert type(build_verifier(ServiceSettings(dev_mode=True, jwt_jwks_path=str(dev.jwks_path)))) is JWTVerifier


def _segment(obj: bytes) -> str:
    return base64.urlsafe_b64encode(obj).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"[" * 5_000 + b"]" * 5_000, "malformed token"),  # 13 KB: within the token bound
        (b"not json", "malformed token"),
        (b'{"iss": 5}', "missing required claim(s): iss"),
        (b'["iss"]', "missing required claim(s): iss"),
    ],
)
def test_the_issuer_is_read_safely_before_anything_is_verified(
    payload: bytes, fragment: str, idp: TestIssuer, tmp_path: Path
) -> None:
    config = _entry("entra", idp.write_jwks(tmp_path / "jwks.json"))
    verifier = TrustedIssuers(
        {
            config.issuer: JWTVerifier(
                config.issuer, config.audience, jwks_path=config.jwks_path, mapping=config.mapping()
            )
        }
    )
    token = f"{_segment(b'{}')}.{_segment(payload)}.{_segment(b'sig')}"
    with pytest.raises(Unauthorized, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        verifier.verify(token)
    with pytest.raises(Unauthorized, match="not a compact JWS"):
        verifier.verify("a.b")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(_NAMES), inner, max_size=5),
    max_leaves=30,
)


_MAPPINGS = {preset: _entry(preset, "/unused.json").mapping() for preset in CASES}
_FIXTURES = {preset: fixture(preset)[1] for preset in CASES}


@settings(max_examples=200, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(_NAMES), _json, max_size=4),
    drop=st.sets(st.sampled_from(_NAMES)),
    preset=st.sampled_from(sorted(CASES)),
)
def test_any_claims_give_a_principal_or_a_mapping_error(changes: dict[str, Any], drop: set[str], preset: str) -> None:
    """Whatever shape a signed token's claims have (the fixture's, some replaced by any JSON, some
    dropped), mapping never raises, and what it gives is bounded."""
    claims = {k: v for k, v in {**_FIXTURES[preset], **changes}.items() if k not in drop}
    result = map_claims(claims, _MAPPINGS[preset])
    assert isinstance(result, Principal | MappingError)
    if isinstance(result, Principal):
        assert result.roles and result.roles <= {"admin", "employee", "coach", "partner"}
        assert len(result.sub) <= 256 and (result.name is None or len(result.name) <= 200)
        assert result.tenant_id in set(CASES[preset][0].get("tenant_map", {}).values()) | {
            CASES[preset][0].get("fixed_tenant")
        }
