"""Issue 2 acceptance: every bad token is a 401 with a JSON error; roles 403; other tenants 404;
malformed input 422 naming the field."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from advocacy_common.auth.devkeys import ensure_dev_keys, mint_token
from tests.e2e.conftest import E2EStack


def b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def claims(tenant: str) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "mallory",
        "tid": tenant,
        "roles": ["admin"],
        "iss": "advocacy-dev",
        "aud": "advocacy",
        "iat": now,
        "exp": now + 600,
    }


def bad_tokens(stack: E2EStack, tenant: str, tmp_path: Path) -> dict[str, str | None]:
    other_keys = ensure_dev_keys(tmp_path / "other-keys")
    public_jwk = json.loads(stack.keys.jwks_path.read_text())["keys"][0]
    hs_key = OctKey.import_key(json.dumps(public_jwk).encode())
    return {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired beyond leeway": mint_token(
            stack.keys, tenant=tenant, sub="a", roles=["admin"], ttl_seconds=10, now=int(time.time()) - 71
        ),
        "signed by another key": mint_token(other_keys, tenant=tenant, sub="a", roles=["admin"]),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(tenant))}.",
        "hs256 with the public key": jwt.encode(
            {"alg": "HS256", "kid": public_jwk["kid"]}, claims(tenant), hs_key, algorithms=["HS256"]
        ),
        "wrong issuer": mint_token(stack.keys, tenant=tenant, sub="a", roles=["admin"], issuer="evil"),
        "wrong audience": mint_token(stack.keys, tenant=tenant, sub="a", roles=["admin"], audience="other"),
    }


@pytest.mark.parametrize(
    "svc,path",
    [("content", "/v1/content"), ("metrics", "/v1/metrics/employees/me"), ("gamification", "/v1/leaderboard")],
)
async def test_bad_tokens_are_401_with_json_error(
    stack: E2EStack, new_tenant: str, tmp_path: Path, svc: str, path: str
) -> None:
    async with stack.client(svc) as client:
        for label, token in bad_tokens(stack, new_tenant, tmp_path).items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = await client.get(path, headers=headers)
            assert r.status_code == 401, (label, r.status_code, r.text)
            body = r.json()
            assert body["error"]["code"] == "unauthorized", label
            assert body["error"]["message"], label


async def test_token_within_leeway_is_accepted(stack: E2EStack, new_tenant: str) -> None:
    token = mint_token(
        stack.keys, tenant=new_tenant, sub="a", roles=["employee"], ttl_seconds=10, now=int(time.time()) - 50
    )
    async with stack.client("content", token) as client:
        assert (await client.get("/v1/content")).status_code == 200


async def test_employee_on_admin_endpoint_is_403(stack: E2EStack, new_tenant: str) -> None:
    async with stack.client("content", stack.token(new_tenant, "eve", "employee")) as client:
        r = await client.post("/v1/content", json={"title": "t", "url": "https://example.com"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with stack.client("metrics", stack.token(new_tenant, "eve", "employee")) as client:
        assert (await client.get("/v1/metrics/employees/someone-else")).status_code == 403
        mine = await client.get("/v1/metrics/employees/me")
    assert mine.status_code == 200 and mine.json()["clicks"] == 0 and mine.json()["shares"] == 0


async def test_other_tenant_gets_404_not_403(stack: E2EStack, new_tenant: str) -> None:
    async with stack.client("content", stack.token(new_tenant, "boss", "admin")) as client:
        r = await client.post("/v1/content", json={"title": "Secret plan", "url": "https://example.com/plan"})
        assert r.status_code == 201
        content_id = r.json()["id"]
    for role in ("admin", "employee"):
        async with stack.client("content", stack.token(new_tenant + "-b", "spy", role)) as other:
            r = await other.get(f"/v1/content/{content_id}")
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "not_found"
            listing = await other.get("/v1/content")
            assert content_id not in {i["id"] for i in listing.json()["items"]}
    async with stack.client("sharing", stack.token(new_tenant + "-b", "spy", "employee")) as other:
        r = await other.post("/v1/shares", json={"content_id": content_id, "network": "x"})
        assert r.status_code == 404


async def test_malformed_json_and_missing_fields_are_422_naming_the_field(stack: E2EStack, new_tenant: str) -> None:
    admin = stack.token(new_tenant, "boss", "admin")
    async with stack.client("content", admin) as client:
        r = await client.post("/v1/content", content=b'{"title": "oops",', headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["field"] == "body"

        r = await client.post("/v1/content", json={"title": "no url"})
        assert r.status_code == 422
        assert {"field": "url"}.items() <= r.json()["error"]["details"][0].items()

        for url in ("javascript:alert(1)", "data:text/html,hi", "ftp://example.com/x", "https://user:pw@example.com/"):
            r = await client.post("/v1/content", json={"title": "t", "url": url})
            assert r.status_code == 422, url
            assert r.json()["error"]["details"][0]["field"] == "url", url

        r = await client.post("/v1/content", json={"title": "t", "url": "https://e.com", "tenant_id": "other"})
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["field"] == "tenant_id"

        r = await client.post(
            "/v1/content",
            json={
                "title": "t",
                "url": "https://e.com",
                "publish_at": "2030-01-02T00:00:00Z",
                "expires_at": "2030-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "expires_at"

        r = await client.post("/v1/content", json={"title": "t", "url": "https://e.com", "captions": {"myspace": "hi"}})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"].startswith("captions")

    async with stack.client("sharing", stack.token(new_tenant, "e", "employee")) as client:
        r = await client.post("/v1/shares", json={"content_id": "x", "network": "friendster"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "network"

    async with stack.client("sharing") as public:
        assert (await public.get("/r/" + "a" * 2100)).status_code in (404, 414)
        assert (await public.get("/r/doesnotexist")).status_code == 404
