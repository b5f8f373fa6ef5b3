"""A second issuer, end to end in one service (issue 17): the gamification app trusts our own issuer
(``JWT_*``) and, through ``AUTH_ISSUERS``, a Microsoft Entra ID tenant whose JWKS is served over real
HTTP on loopback. An Entra-style token reads the leaderboard; the same token without its ``roles``
claim is a 401 that tells the caller nothing about the mapping, while the log names the claim."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from advocacy_common.auth.issuers import TrustedIssuers
from advocacy_common.auth.verifier import UNMAPPED
from advocacy_gamification.settings import GamificationSettings
from tests.integration.test_gamification_support import Gam, gam, gam_url, share
from tests.support.idp import TestIssuer, fixture, fixture_token, serve_jwks

__all__ = ["gam", "gam_url"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def entra() -> Iterator[tuple[TestIssuer, str]]:
    idp = TestIssuer(kid="entra-test-key")
    with serve_jwks(idp) as url:
        yield idp, url


async def test_an_entra_token_from_a_second_issuer_reads_the_leaderboard(
    gam: Gam,
    gam_url: str,
    new_tenant: str,
    entra: tuple[TestIssuer, str],
    mint: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    idp, jwks_url = entra
    _, claims = fixture("entra")
    oid, tid = claims["oid"], claims["tid"]
    settings = GamificationSettings(
        database_url=gam_url,
        role="api",
        dev_mode=True,
        jwt_jwks_path=gam.jwks_path,
        log_json=True,  # the log line checked below is the JSON one an operator reads
        log_level="WARNING",
        auth_issuers=[
            {
                "preset": "entra",
                "issuer": claims["iss"],
                "audience": claims["aud"],
                "jwks_url": jwks_url,
                "tenant_map": {tid: new_tenant},
            }
        ],
    )
    await gam.apply(share(new_tenant, oid, team="sales", name="Adele Vance"), share(new_tenant, "e-2"))
    from advocacy_gamification.app import create_app

    app = create_app(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        assert isinstance(app.state.verifier, TrustedIssuers)
        assert app.state.verifier.key_ids >= {idp.kid}  # fetched over HTTP at start

        async def leaderboard(token: str) -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://gam",
                headers={"Authorization": f"Bearer {token}"},
            ) as c:
                return await c.get("/v1/leaderboard", params={"window": "all"})

        r = await leaderboard(fixture_token(idp, "entra"))
        assert r.status_code == 200, r.text
        assert {i["employee_id"] for i in r.json()["items"]} == {oid, "e-2"}
        me = next(i for i in r.json()["items"] if i["employee_id"] == oid)
        assert me["points"] == 10

        # Our own issuer's tokens keep working beside it.
        assert (await leaderboard(mint(new_tenant, "e-2"))).status_code == 200

        capsys.readouterr()
        r = await leaderboard(fixture_token(idp, "entra", drop=("roles",)))
        assert r.status_code == 401, r.text
        assert r.json()["error"]["message"] == UNMAPPED and "roles" not in r.text
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        refused = [x for x in lines if x.get("logger") == "advocacy.auth"]
        assert [(x["claim"], x["reason"], x["issuer"]) for x in refused] == [("roles", "missing", claims["iss"])], lines

        # Another Entra directory behind the same issuer settings maps to no tenant of ours.
        other = await leaderboard(fixture_token(idp, "entra", tid="00000000-0000-0000-0000-000000000001"))
        assert other.status_code == 401
