"""JWT verification, the principal, and the FastAPI dependencies (no network, no database)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey

from advocacy_common.auth import (
    ALLOWED_ALGORITHMS,
    AdminPrincipal,
    CurrentPrincipal,
    DevKeys,
    EmployeePrincipal,
    JWTVerifier,
    PartnerPrincipal,
    Principal,
    ensure_dev_keys,
    mint_token,
    require_roles,
)
from advocacy_common.auth import verifier as verifier_module
from advocacy_common.errors import Unauthorized, install_error_handlers
from advocacy_common.settings import DEV_AUDIENCE, DEV_ISSUER, ServiceSettings

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeys:
    return ensure_dev_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def verifier(keys: DevKeys) -> JWTVerifier:
    return JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=str(keys.jwks_path), clock=lambda: NOW)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: object) -> str:
    return _b64(json.dumps(obj).encode())


def _claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims at NOW; an override of ``None`` removes the claim."""
    claims: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "emp-1",
        "tid": "tenant-1",
        "roles": ["employee"],
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: Key, claims: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, claims, key, algorithms=[alg])


def _dev_key(keys: DevKeys) -> RSAKey:
    return RSAKey.import_key(json.loads(keys.private_path.read_text()))


def _public_pem(keys: DevKeys) -> bytes:
    return RSAKey.import_key(json.loads(keys.jwks_path.read_text())["keys"][0]).as_pem(private=False)


def _hmac_token(secret: bytes, kid: str, alg: str = "HS256") -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_segment({'alg': alg, 'kid': kid, 'typ': 'JWT'})}.{_segment(_claims())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), digest).digest())}"


def _write_jwks(path: Path, *entries: object) -> str:
    path.write_text(json.dumps({"keys": list(entries)}))
    return str(path)


def _reject(verifier: JWTVerifier, token: str, fragment: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert caught.value.status_code == 401
    assert fragment in caught.value.message


# --- the happy path -----------------------------------------------------------------------------


def test_valid_token_gives_a_principal_with_every_field(keys: DevKeys, verifier: JWTVerifier) -> None:
    token = mint_token(keys, tenant="t-9", sub="e-7", roles=["admin", "coach"], team="sales", name="Ada", now=NOW)
    assert verifier.verify(token) == Principal(
        sub="e-7",
        tenant_id="t-9",
        roles=frozenset({"admin", "coach"}),
        team="sales",
        name="Ada",
        expires_at=datetime.fromtimestamp(NOW + 3600, UTC),
    )


def test_optional_claims_and_unknown_roles(keys: DevKeys, verifier: JWTVerifier) -> None:
    token = mint_token(keys, tenant="t", sub="e", roles=[], now=NOW, extra_claims={"roles": ["employee", "superuser"]})
    principal = verifier.verify(token)
    assert principal.roles == frozenset({"employee"})
    assert principal.team is None and principal.name is None
    assert principal.has_role("employee") and not principal.is_admin


def test_principal_helpers() -> None:
    admin = Principal(sub="s", tenant_id="t", roles=frozenset({"admin"}))
    assert admin.is_admin and admin.has_any_role("partner", "admin") and not admin.has_any_role("coach")
    with pytest.raises(AttributeError):
        admin.sub = "other"  # type: ignore[misc]


@pytest.mark.parametrize("aud", [DEV_AUDIENCE, ["other", DEV_AUDIENCE]])
def test_audience_may_be_a_string_or_a_list(keys: DevKeys, verifier: JWTVerifier, aud: Any) -> None:
    assert verifier.verify(_sign(_dev_key(keys), _claims(aud=aud))).sub == "emp-1"


@pytest.mark.parametrize("seconds_past", [0, 59])
def test_expiry_within_the_leeway_is_accepted(keys: DevKeys, verifier: JWTVerifier, seconds_past: int) -> None:
    token = mint_token(keys, tenant="t", sub="e", roles=["employee"], now=NOW - 3600 - seconds_past)
    assert verifier.verify(token).sub == "e"


def test_not_before_within_the_leeway_is_accepted(keys: DevKeys, verifier: JWTVerifier) -> None:
    assert verifier.verify(_sign(_dev_key(keys), _claims(nbf=NOW + 59, iat=NOW + 59))).sub == "emp-1"


# --- refusals ------------------------------------------------------------------------------------


def test_expired_beyond_the_leeway(keys: DevKeys, verifier: JWTVerifier) -> None:
    token = mint_token(keys, tenant="t", sub="e", roles=["employee"], now=NOW - 3600 - 61)
    _reject(verifier, token, "expired")


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"exp": None}, "missing required claim(s): exp"),
        ({"iss": None}, "missing required claim(s): iss"),
        ({"aud": None}, "missing required claim(s): aud"),
        ({"sub": None}, "missing required claim(s): sub"),
        ({"tid": None}, "missing required claim(s): tid"),
        ({"exp": "tomorrow"}, "exp"),
        ({"nbf": NOW + 61}, "not yet valid"),
        ({"iat": NOW + 3600}, "issued in the future"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": ["a", "b"]}, "aud"),
        ({"sub": ""}, "sub"),
        ({"tid": 42}, "'tid'"),
        ({"roles": "admin"}, "'roles' must be a list"),
        ({"roles": ["admin", 1]}, "'roles' must be a list"),
        ({"team": ["a"]}, "'team' must be a string"),
    ],
)
def test_bad_claims(keys: DevKeys, verifier: JWTVerifier, overrides: dict[str, Any], fragment: str) -> None:
    _reject(verifier, _sign(_dev_key(keys), _claims(**overrides)), fragment)


def test_alg_none_is_refused(keys: DevKeys, verifier: JWTVerifier) -> None:
    token = f"{_segment({'alg': 'none', 'kid': keys.kid})}.{_segment(_claims())}."
    _reject(verifier, token, "algorithm is not allowed")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_public_key_is_refused(keys: DevKeys, verifier: JWTVerifier, alg: str) -> None:
    # The classic key-confusion forgery: the public key (PEM or JWKS bytes) used as an HMAC secret.
    for secret in (_public_pem(keys), keys.jwks_path.read_bytes()):
        _reject(verifier, _hmac_token(secret, keys.kid, alg), "algorithm is not allowed")


def test_es512_is_not_on_the_allow_list(verifier: JWTVerifier) -> None:
    key = ECKey.generate_key("P-521", parameters={"kid": "ec"}, private=True)
    _reject(verifier, _sign(key, _claims(), alg="ES512"), "algorithm is not allowed")


def test_signature_by_another_key_with_the_same_kid(keys: DevKeys, verifier: JWTVerifier) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": keys.kid}, private=True)
    _reject(verifier, _sign(impostor, _claims(roles=["admin"])), "signature is invalid")


def test_tampered_payload(keys: DevKeys, verifier: JWTVerifier) -> None:
    header, _, signature = mint_token(keys, tenant="t", sub="e", roles=["employee"], now=NOW).split(".")
    forged = _segment(_claims(roles=["admin"]))
    _reject(verifier, f"{header}.{forged}.{signature}", "signature is invalid")


def test_embedded_jwk_header_is_not_trusted(verifier: JWTVerifier) -> None:
    # An EC key keeps the header under joserfc's 512-byte limit, so the kid lookup is what refuses it.
    attacker = ECKey.generate_key("P-256", parameters={"kid": "attacker"}, private=True)
    token = _sign(attacker, _claims(roles=["admin"]), alg="ES256", jwk=attacker.as_dict(private=False))
    _reject(verifier, token, "unknown key")


def test_unknown_kid(verifier: JWTVerifier) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "somebody-else"}, private=True)
    _reject(verifier, _sign(stranger, _claims()), "unknown key")


def test_missing_kid(keys: DevKeys, verifier: JWTVerifier) -> None:
    key = _dev_key(keys)
    token = jwt.encode({"alg": "RS256"}, _claims(), key, algorithms=["RS256"])
    _reject(verifier, token, "no 'kid'")


def test_algorithm_must_match_the_key(keys: DevKeys, verifier: JWTVerifier) -> None:
    # The dev key is published with alg RS256; a PS256 signature by that very key is refused.
    unrestricted = RSAKey.import_key({k: v for k, v in _dev_key(keys).as_dict(private=True).items() if k != "alg"})
    _reject(verifier, _sign(unrestricted, _claims(), alg="PS256"), "does not match its signing key")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d.e",
        "é.b.c",
        f"{_segment(['alg'])}.{_segment({})}.",
        f"{_segment('alg')}.{_segment({})}.",
        f"{_segment({'alg': 'RS256', 'kid': 7})}.{_segment({})}.",
        f"{_segment({'typ': 'JWT'})}.{_segment({})}.",
        f"{_segment({'alg': 'RS256', 'kid': 'x'})}.{_segment({})}." + "A" * 20_000,
    ],
)
def test_malformed_tokens(verifier: JWTVerifier, token: str) -> None:
    with pytest.raises(Unauthorized):
        verifier.verify(token)


HEADER_NAMES = ["alg", "kid", "typ", "crit", "b64", "jwk"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk"]), st.from_type(object)),
    payload=st.binary(max_size=64),
    signature=st.binary(max_size=64),
)
def test_fuzzed_tokens_only_ever_raise_unauthorized(
    verifier: JWTVerifier, header: dict[str, Any], payload: bytes, signature: bytes
) -> None:
    try:
        header_segment = _segment(header)
    except (TypeError, ValueError):
        header_segment = _b64(repr(header).encode())
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header_segment}.{_b64(payload)}.{_b64(signature)}")


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_fuzzed_text_only_ever_raises_unauthorized(verifier: JWTVerifier, text: str) -> None:
    with pytest.raises(Unauthorized):
        verifier.verify(text)


# --- algorithms and JWKS contents ---------------------------------------------------------------


def _generate(alg: str, kid: str) -> Key:
    params: Any = {"kid": kid, "use": "sig"}
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    if alg == "ES384":
        return ECKey.generate_key("P-384", parameters=params, private=True)
    return OKPKey.generate_key("Ed25519", parameters=params, private=True)


@pytest.mark.parametrize("alg", ALLOWED_ALGORITHMS)
def test_every_allowed_algorithm_verifies(tmp_path: Path, alg: str) -> None:
    key = _generate(alg, kid=f"k-{alg}")
    path = _write_jwks(tmp_path / "jwks.json", key.as_dict(private=False))
    verifier = JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=path, clock=lambda: NOW)
    if alg == "EdDSA":
        # joserfc warns on every use of the polymorphic "EdDSA" name (RFC 9864). Signing here
        # goes through joserfc's default registry and warns; verifying must not (filterwarnings=error).
        with pytest.warns(SecurityWarning, match="EdDSA"):
            token = _sign(key, _claims(), alg=alg)
    else:
        token = _sign(key, _claims(), alg=alg)
    assert verifier.verify(token).tenant_id == "tenant-1"


def test_jwks_entries_that_cannot_be_trusted_are_skipped(tmp_path: Path) -> None:
    good = RSAKey.generate_key(2048, parameters={"kid": "good"}, private=True)
    with pytest.warns(SecurityWarning):
        weak = RSAKey.generate_key(1024, parameters={"kid": "weak"}, private=True)
    entries = [
        good.as_dict(private=True),  # a private key published by mistake: only its public half is used
        weak.as_dict(private=False),  # too small: skipped without joserfc's import warning
        OctKey.generate_key(256, parameters={"kid": "oct"}).as_dict(),  # symmetric
        {**RSAKey.generate_key(2048, private=False).as_dict(), "kid": "enc", "use": "enc"},
        {**RSAKey.generate_key(2048, private=False).as_dict(), "kid": "hs", "alg": "HS256"},
        RSAKey.generate_key(2048, private=False).as_dict(),  # no kid
        {"kty": "RSA", "kid": "broken", "n": "AQAB" * 100, "e": 3},
        "not an object",
    ]
    path = _write_jwks(tmp_path / "jwks.json", *entries)
    verifier = JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=path, clock=lambda: NOW)
    assert verifier.key_ids == {"good"}
    assert verifier.verify(_sign(good, _claims())).sub == "emp-1"
    _reject(verifier, _sign(weak, _claims()), "unknown key")


def test_jwks_file_problems_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=str(tmp_path / "absent.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="not a JWKS"):
        JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=str(tmp_path / "list.json"))
    oct_only = _write_jwks(tmp_path / "oct.json", OctKey.generate_key(256, parameters={"kid": "o"}).as_dict())
    with pytest.raises(ValueError, match="no usable"):
        JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=oct_only)
    with pytest.raises(ValueError, match="jwks_path or jwks_url"):
        JWTVerifier(DEV_ISSUER, DEV_AUDIENCE)


def test_from_settings(keys: DevKeys) -> None:
    settings = ServiceSettings(dev_mode=True, jwt_jwks_path=str(keys.jwks_path), jwt_leeway_seconds=5)
    verifier = JWTVerifier.from_settings(settings)
    assert (verifier.issuer, verifier.audience, verifier.leeway_seconds) == (DEV_ISSUER, DEV_AUDIENCE, 5)
    assert verifier.key_ids == {keys.kid}
    assert verifier.verify(mint_token(keys, tenant="t", sub="e", roles=["partner"])).roles == {"partner"}


# --- JWKS from a URL -----------------------------------------------------------------------------


class FakeIssuer:
    """Stands in for ``fetch_jwks``: serves whatever keys it holds, counts fetches, can be down."""

    def __init__(self, *keys: Key) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False

    def __call__(self, url: str) -> Any:
        assert url == "https://issuer.example/jwks"
        self.fetches += 1
        if self.down:
            raise httpx.ConnectError("connection refused")
        return {"keys": [k.as_dict(private=False) for k in self.keys]}


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def _url_verifier(monkeypatch: pytest.MonkeyPatch, issuer: FakeIssuer, clock: Clock) -> JWTVerifier:
    monkeypatch.setattr(verifier_module, "fetch_jwks", issuer)
    return JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_url="https://issuer.example/jwks", clock=clock)


def _rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True)


def test_url_keys_are_fetched_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    key = _rsa("k1")
    issuer, clock = FakeIssuer(key), Clock()
    verifier = _url_verifier(monkeypatch, issuer, clock)
    for _ in range(5):
        clock.now += 1
        assert verifier.verify(_sign(key, _claims())).sub == "emp-1"
    assert issuer.fetches == 1


def test_unknown_kid_refetches_at_most_every_30_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = _rsa("old"), _rsa("new")
    issuer, clock = FakeIssuer(old), Clock()
    verifier = _url_verifier(monkeypatch, issuer, clock)
    issuer.keys = [old, new]  # the issuer rotates in a new key right after our start-up fetch

    _reject(verifier, _sign(new, _claims()), "unknown key")  # within 30 s of the last fetch
    assert issuer.fetches == 1

    clock.now += 30
    assert verifier.verify(_sign(new, _claims())).sub == "emp-1"
    assert issuer.fetches == 2

    forged = _rsa("forged")
    clock.now += 30
    for _ in range(10):  # a storm of unknown kids costs at most one fetch per interval
        _reject(verifier, _sign(forged, _claims()), "unknown key")
    assert issuer.fetches == 3


def test_retired_keys_stop_verifying_after_a_refetch(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = _rsa("old"), _rsa("new")
    issuer, clock = FakeIssuer(old), Clock()
    verifier = _url_verifier(monkeypatch, issuer, clock)
    issuer.keys = [new]
    clock.now += 31
    assert verifier.verify(_sign(new, _claims())).sub == "emp-1"
    assert verifier.key_ids == {"new"}
    _reject(verifier, _sign(old, _claims()), "unknown key")


def test_issuer_down_at_start_up_recovers(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    key = _rsa("k1")
    issuer, clock = FakeIssuer(key), Clock()
    issuer.down = True
    verifier = _url_verifier(monkeypatch, issuer, clock)
    assert verifier.key_ids == frozenset()
    assert "could not fetch the JWKS" in caplog.text

    issuer.down = False
    _reject(verifier, _sign(key, _claims()), "unknown key")  # still inside the 30 s window
    clock.now += 30
    assert verifier.verify(_sign(key, _claims())).sub == "emp-1"

    issuer.down = True  # a failed refetch keeps the keys we have
    clock.now += 30
    _reject(verifier, _sign(_rsa("k2"), _claims()), "unknown key")
    assert verifier.key_ids == {"k1"}


def test_file_and_url_keys_are_both_trusted(monkeypatch: pytest.MonkeyPatch, keys: DevKeys, tmp_path: Path) -> None:
    remote = _rsa("remote")
    monkeypatch.setattr(verifier_module, "fetch_jwks", FakeIssuer(remote))
    verifier = JWTVerifier(
        DEV_ISSUER,
        DEV_AUDIENCE,
        jwks_path=str(keys.jwks_path),
        jwks_url="https://issuer.example/jwks",
        clock=lambda: NOW,
    )
    assert verifier.key_ids == {keys.kid, "remote"}
    assert verifier.verify(_sign(remote, _claims())).sub == "emp-1"


# --- FastAPI dependencies ------------------------------------------------------------------------


def _app(verifier: JWTVerifier) -> FastAPI:
    app = FastAPI()
    app.state.verifier = verifier
    install_error_handlers(app)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": principal.sub, "tenant": principal.tenant_id, "roles": sorted(principal.roles)}

    @app.get("/admin")
    async def admin(principal: AdminPrincipal) -> dict[str, str]:
        return {"sub": principal.sub}

    @app.get("/staff")
    async def staff(principal: EmployeePrincipal) -> dict[str, str]:
        return {"sub": principal.sub}

    @app.get("/partner")
    async def partner(principal: PartnerPrincipal) -> dict[str, str]:
        return {"sub": principal.sub}

    return app


@pytest.fixture
async def client(keys: DevKeys) -> AsyncIterator[httpx.AsyncClient]:
    # httpx's ASGI transport rather than starlette's TestClient: this Starlette release deprecates
    # TestClient-over-httpx (it wants the httpx2 package, which is not a dependency here).
    verifier = JWTVerifier(DEV_ISSUER, DEV_AUDIENCE, jwks_path=str(keys.jwks_path))
    transport = httpx.ASGITransport(app=_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _bearer(keys: DevKeys, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(keys, tenant='t1', sub='e1', roles=list(roles))}"}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "bearer"],
)
async def test_missing_or_garbled_header_is_401_with_a_challenge(
    client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]


async def test_invalid_token_is_401_invalid_token(client: httpx.AsyncClient, keys: DevKeys) -> None:
    token = mint_token(keys, tenant="t1", sub="e1", roles=["admin"], now=NOW)  # long expired
    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["error"] == {"code": "unauthorized", "message": "token has expired", "details": []}


async def test_valid_token_reaches_the_route(client: httpx.AsyncClient, keys: DevKeys) -> None:
    # The scheme is case-insensitive (RFC 7235).
    token = mint_token(keys, tenant="t1", sub="e1", roles=["coach"])
    response = await client.get("/me", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"sub": "e1", "tenant": "t1", "roles": ["coach"]}


@pytest.mark.parametrize(
    ("path", "roles", "status"),
    [
        ("/admin", ["employee"], 403),
        ("/admin", ["coach", "partner"], 403),
        ("/admin", ["admin"], 200),
        ("/staff", ["employee"], 200),
        ("/staff", ["coach"], 200),
        ("/staff", ["admin"], 200),
        ("/staff", ["partner"], 403),
        ("/staff", [], 403),
        ("/partner", ["partner"], 200),
        ("/partner", ["admin"], 200),
        ("/partner", ["employee"], 403),
    ],
)
async def test_role_gates(client: httpx.AsyncClient, keys: DevKeys, path: str, roles: list[str], status: int) -> None:
    response = await client.get(path, headers=_bearer(keys, *roles))
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden"


async def test_forbidden_names_the_role(client: httpx.AsyncClient, keys: DevKeys) -> None:
    response = await client.get("/admin", headers=_bearer(keys, "employee"))
    assert response.json()["error"] == {"code": "forbidden", "message": "requires role: admin", "details": []}


def test_require_roles_rejects_typos() -> None:
    with pytest.raises(ValueError, match="admn"):
        require_roles("admn")
    with pytest.raises(ValueError):
        require_roles()
