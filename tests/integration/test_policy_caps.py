"""The policy's caps through content's API (issue 12): a term list or a text past its cap is a 422
naming the field; the issue's hostile policy (2,000 terms sharing a first word) against a long
message is judged in the process pool with the old matcher's violations."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.migrations import upgrade
from advocacy_common.policy import MAX_BLOCKED_TERMS, MAX_TERM_CHARS, MAX_TERM_WORDS
from advocacy_content.app import create_app
from advocacy_content.settings import ContentSettings
from tests.support import policy_reference as reference

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(new_database: str, dev_keys: DevKeys, mint: Callable[..., str]) -> AsyncIterator[httpx.AsyncClient]:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database)
    settings = ContentSettings(
        database_url=new_database,
        role="api",
        dev_mode=True,
        jwt_jwks_path=str(dev_keys.jwks_path),
        log_json=False,
        log_level="WARNING",
    )
    app = create_app(settings)
    token = mint(f"t-{uuid.uuid4().hex[:8]}", "boss", "admin")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        yield await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://content.test",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        )


def field_of(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    body: dict[str, Any] = r.json()["error"]
    assert body["code"] == "validation_error"
    return str(body["details"][0]["field"])


async def test_term_lists_past_their_caps_are_422_naming_the_field(admin: httpx.AsyncClient) -> None:
    async def put(terms: list[str]) -> httpx.Response:
        return await admin.put("/v1/policy", json={"blocked_terms": terms})

    assert field_of(await put(["ok", " ".join(["w"] * (MAX_TERM_WORDS + 1))])) == "blocked_terms.1"
    assert field_of(await put(["bell\x07"])) == "blocked_terms.0"
    assert field_of(await put(["\ue000private"])) == "blocked_terms.0"
    assert field_of(await put(["x" * (MAX_TERM_CHARS + 1)])) == "blocked_terms.0"
    assert field_of(await put([f"t{k}" for k in range(MAX_BLOCKED_TERMS + 1)])) == "blocked_terms"
    # at the caps: accepted
    r = await put([" ".join(["w"] * MAX_TERM_WORDS), *(f"t{k}" for k in range(MAX_BLOCKED_TERMS - 1))])
    assert r.status_code == 200, r.text


async def test_texts_past_their_caps_are_422_naming_the_field(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/v1/policy/check", json={"network": "email", "text": "a" * 100_001})
    assert field_of(r) == "text"
    r = await admin.post(
        "/v1/content",
        json={"title": "T", "url": "https://example.com/a", "captions": {"linkedin": "c" * 10_001}},
    )
    assert field_of(r) == "captions.linkedin"
    r = await admin.post(
        "/v1/coaching/requests", json={"network": "linkedin", "draft": "d" * 20_001, "question": "ok?"}
    )
    assert field_of(r) == "draft"


async def test_the_hostile_policy_is_judged_in_the_pool_as_before(admin: httpx.AsyncClient) -> None:
    rng = random.Random(12)
    terms = [f"acme {rng.choice('bcdfg')}{rng.randrange(10**6)} {rng.randrange(1000)}" for _ in range(2000)]
    r = await admin.put("/v1/policy", json={"blocked_terms": terms})
    assert r.status_code == 200, r.text
    words = ["acme", "Acme!", "@cme", "launch", "news", terms[7].removeprefix("acme "), terms[1999]]
    text = " ".join(rng.choice(words) for _ in range(800))[:4000]
    r = await admin.post("/v1/policy/check", json={"network": "email", "text": text})
    assert r.status_code == 200, r.text
    expected = [[v.rule, v.message, list(v.span)] for v in reference.find_blocked_terms(tuple(terms), text)]
    got = [[v["rule"], v["message"], v["span"]] for v in r.json()["violations"]]
    assert got == expected and len(got) > 10
