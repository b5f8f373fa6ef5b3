"""Tokens: every forgery and every expired or misdirected token is a 401 on every service; a token
59 s past its expiry is still accepted (60 s leeway), 61 s past is not. With a JWKS URL, an
unknown kid costs exactly one refetch (then 401), and a storm of unknown kids no more. The refetch
is throttled to one per ``JWT_JWKS_REFETCH_SECONDS`` (30 s by default, 5 s here to keep the test
short) counted from the last fetch, start-up included: an unknown kid within that time of start-up
is refused without a refetch."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from advocacy_common.auth.devkeys import DevKeys, mint_token
from tests.security.openapi_kit import SERVICES, operations
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

REFETCH_SECONDS = 5.0


def probe_path(svc: str) -> str:
    """An authenticated GET of the service with no path parameter (from its OpenAPI document)."""
    for op in operations(svc):
        if op.method == "get" and not op.params("path") and not op.streams:
            return op.path
    raise AssertionError(f"{svc}: no GET route without parameters")


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _private_key(keys: DevKeys) -> RSAKey:
    return RSAKey.import_key(json.loads(keys.private_path.read_text()))


def _claims(tenant: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "advocacy-dev",
        "aud": "advocacy",
        "sub": "mallory",
        "tid": tenant,
        "roles": ["admin"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def signed(keys: DevKeys, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid or keys.kid}, claims, _private_key(keys), algorithms=["RS256"])


def bad_tokens(keys: DevKeys, tenant: str) -> dict[str, str]:
    public_jwk = json.loads(keys.jwks_path.read_text())["keys"][0]
    hs_key = OctKey.import_key(json.dumps(public_jwk).encode())
    now = int(time.time())
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': keys.kid})}.{_b64(_claims(tenant))}.",
        "alg none, no signature dot": f"{_b64({'alg': 'none'})}.{_b64(_claims(tenant))}",
        "hs256 signed with the public key": jwt.encode(
            {"alg": "HS256", "kid": public_jwk["kid"]}, _claims(tenant), hs_key, algorithms=["HS256"]
        ),
        "hs256 with the public key's PEM-ish bytes": jwt.encode(
            {"alg": "HS256", "kid": public_jwk["kid"]},
            _claims(tenant),
            OctKey.import_key(keys.jwks_path.read_bytes()),
            algorithms=["HS256"],
        ),
        "expired by 61 s": mint_token(keys, tenant=tenant, sub="a", roles=["admin"], ttl_seconds=60, now=now - 121),
        "missing exp": signed(keys, _claims(tenant, exp=None)),
        "wrong audience": mint_token(keys, tenant=tenant, sub="a", roles=["admin"], audience="someone-else"),
        "wrong issuer": mint_token(keys, tenant=tenant, sub="a", roles=["admin"], issuer="https://evil.example"),
        "unknown kid": signed(keys, _claims(tenant), kid=f"nobody-{uuid.uuid4().hex[:6]}"),
        "missing tid": signed(keys, _claims(tenant, tid=None)),
        "missing sub": signed(keys, _claims(tenant, sub=None)),
        "signature of another token": mint_token(keys, tenant=tenant, sub="a", roles=["admin"]).rsplit(".", 1)[0]
        + "."
        + mint_token(keys, tenant=tenant + "x", sub="b", roles=["admin"]).rsplit(".", 1)[1],
    }


@pytest.mark.parametrize("svc", SERVICES)
async def test_forged_expired_and_misdirected_tokens_are_401(
    svc: str, sec_stack: PrivateStack, dev_keys: DevKeys, new_tenant: str
) -> None:
    path = probe_path(svc)
    async with sec_stack.client(svc) as c:
        for label, token in bad_tokens(dev_keys, new_tenant).items():
            r = await c.get(path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (svc, path, label, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unauthorized", (svc, label)
            assert r.headers.get("www-authenticate", "").startswith("Bearer"), (svc, label)


@pytest.mark.parametrize("svc", SERVICES)
async def test_expiry_leeway_is_60_seconds(
    svc: str, sec_stack: PrivateStack, dev_keys: DevKeys, new_tenant: str
) -> None:
    path = probe_path(svc)
    async with sec_stack.client(svc) as c:
        await c.get("/healthz")  # a warm connection: the request below is not held up by a connect
        # expired at most 59 s ago when minted (exp is whole seconds: round up), so it is within the
        # leeway if the service sees it within a second; a loaded machine can take longer, so a
        # request that took over half a second is tried again with a fresh token
        for _attempt in range(5):
            within = mint_token(
                dev_keys, tenant=new_tenant, sub="a", roles=["admin"], ttl_seconds=60, now=math.ceil(time.time()) - 119
            )
            sent = time.monotonic()
            ok = await c.get(path, headers={"Authorization": f"Bearer {within}"})
            if time.monotonic() - sent < 0.5:
                break
        # expired at least 61 s ago (round down): refused however long the request takes
        beyond = mint_token(
            dev_keys, tenant=new_tenant, sub="a", roles=["admin"], ttl_seconds=60, now=math.floor(time.time()) - 121
        )
        late = await c.get(path, headers={"Authorization": f"Bearer {beyond}"})
    assert ok.status_code == 200, ("expired 59 s ago", svc, ok.status_code, ok.text)
    assert late.status_code == 401, ("expired 61 s ago", svc, late.status_code, late.text)


# -- a JWKS served over HTTP: unknown kid -> one refetch, then 401 ------------------------------------
class _JWKSServer:
    def __init__(self, jwks_path: Path) -> None:
        self.fetches = 0
        self.first_at = 0.0
        body = jwks_path.read_bytes()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.fetches == 1:
                    outer.first_at = time.monotonic()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


@pytest.fixture
def jwks_server(dev_keys: DevKeys) -> Iterator[_JWKSServer]:
    s = _JWKSServer(dev_keys.jwks_path)
    s.thread.start()
    try:
        yield s
    finally:
        s.server.shutdown()
        s.server.server_close()


async def test_unknown_kid_refetches_the_jwks_once_then_401(
    pg: Any, sec_broker: Any, dev_keys: DevKeys, jwks_server: _JWKSServer, tmp_path: Path, new_tenant: str
) -> None:
    stack = PrivateStack(
        server_url=pg.server_url,
        bootstrap=sec_broker.bootstrap,
        keys=dev_keys,
        data_dir=tmp_path / "jwks-stack",
        services=["content"],
        role="api",
        extra_env={
            "content": {
                "JWT_JWKS_PATH": "",
                "JWT_JWKS_URL": jwks_server.url,
                "JWT_JWKS_REFETCH_SECONDS": str(REFETCH_SECONDS),
            }
        },
    )
    try:
        stack.prepare_and_start()
        assert jwks_server.fetches == 1  # at start-up
        good = mint_token(dev_keys, tenant=new_tenant, sub="a", roles=["admin"])
        async with stack.client("content") as c:
            r = await c.get("/v1/content", headers={"Authorization": f"Bearer {good}"})
            assert r.status_code == 200, r.text
            assert jwks_server.fetches == 1  # a known kid needs no fetch
            # within JWT_JWKS_REFETCH_SECONDS of the start-up fetch a storm of forged kids fetches nothing
            for i in range(10):
                forged = signed(dev_keys, _claims(new_tenant), kid=f"early-{i}")
                r = await c.get("/v1/content", headers={"Authorization": f"Bearer {forged}"})
                assert r.status_code == 401, r.text
            assert jwks_server.fetches == 1
            # after the interval: an unknown kid costs exactly one refetch, then 401
            wait = jwks_server.first_at + REFETCH_SECONDS + 1 - time.monotonic()
            await asyncio.sleep(max(0.0, wait))
            first = signed(dev_keys, _claims(new_tenant), kid="rotated-away-1")
            r = await c.get("/v1/content", headers={"Authorization": f"Bearer {first}"})
            assert r.status_code == 401, r.text
            assert jwks_server.fetches == 2
            for i in range(20):  # and a storm right after fetches no more
                forged = signed(dev_keys, _claims(new_tenant), kid=f"storm-{i}")
                r = await c.get("/v1/content", headers={"Authorization": f"Bearer {forged}"})
                assert r.status_code == 401, r.text
            assert jwks_server.fetches == 2
            r = await c.get("/v1/content", headers={"Authorization": f"Bearer {good}"})
            assert r.status_code == 200
    finally:
        stack.stop()
