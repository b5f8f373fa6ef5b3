"""Dev key management and token minting."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from advocacy_common.auth import DevKeys, ensure_dev_keys, mint_token
from advocacy_common.settings import DEV_AUDIENCE, DEV_ISSUER


def _decode(keys: DevKeys, token: str) -> jwt.Token:
    public = KeySet.import_key_set(json.loads(keys.jwks_path.read_text()))
    return jwt.decode(token, public, algorithms=["RS256"])


def test_creates_a_private_key_and_a_public_jwks(tmp_path: Path) -> None:
    keys = ensure_dev_keys(tmp_path / "nested" / "keys")
    assert keys.private_path.name == "dev-private.jwk.json"
    assert keys.jwks_path.name == "jwks.json"
    assert stat.S_IMODE(keys.private_path.stat().st_mode) == 0o600

    private = json.loads(keys.private_path.read_text())
    assert private["kid"] == keys.kid and private["alg"] == "RS256" and private["use"] == "sig"
    assert "d" in private

    (public,) = json.loads(keys.jwks_path.read_text())["keys"]
    assert public["kid"] == keys.kid
    assert not {"d", "p", "q", "dp", "dq", "qi"} & public.keys()


def test_is_idempotent_and_repairs_the_jwks(tmp_path: Path) -> None:
    first = ensure_dev_keys(tmp_path)
    jwks = first.jwks_path.read_text()
    assert ensure_dev_keys(tmp_path) == first
    first.jwks_path.unlink()
    assert ensure_dev_keys(tmp_path) == first
    assert first.jwks_path.read_text() == jwks


def test_concurrent_creation_agrees_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: ensure_dev_keys(tmp_path), range(4)))
    assert len({r.kid for r in results}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-private.jwk.json", "jwks.json"]


def test_mint_token_claims(tmp_path: Path) -> None:
    keys = ensure_dev_keys(tmp_path)
    token = mint_token(keys, tenant="t1", sub="e1", roles=["admin"], team="ops", name="Grace", ttl_seconds=120)
    decoded = _decode(keys, token)
    assert decoded.header["kid"] == keys.kid and decoded.header["alg"] == "RS256"
    claims = decoded.claims
    assert claims["iss"] == DEV_ISSUER and claims["aud"] == DEV_AUDIENCE
    assert (claims["sub"], claims["tid"], claims["roles"]) == ("e1", "t1", ["admin"])
    assert (claims["team"], claims["name"]) == ("ops", "Grace")
    assert claims["iat"] == claims["nbf"] == claims["exp"] - 120


def test_mint_token_options(tmp_path: Path) -> None:
    keys = ensure_dev_keys(tmp_path)
    token = mint_token(
        keys,
        tenant="t1",
        sub="e1",
        roles=["employee"],
        issuer="other",
        audience="api",
        now=1_000,
        extra_claims={"exp": 5_000, "custom": True},
    )
    claims = _decode(keys, token).claims
    assert "team" not in claims and "name" not in claims
    assert (claims["iss"], claims["aud"], claims["iat"], claims["exp"], claims["custom"]) == (
        "other",
        "api",
        1_000,
        5_000,
        True,
    )


def test_mint_token_refuses_unknown_roles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="superuser"):
        mint_token(ensure_dev_keys(tmp_path), tenant="t", sub="s", roles=["superuser"])
