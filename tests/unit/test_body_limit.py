"""Request bodies over the limit are answered 413 before they are read (advocacy_common.bodylimit)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from advocacy_common.bodylimit import BodyLimit

pytestmark = pytest.mark.unit

LIMIT = 1024


def _app(seen: list[int]) -> BodyLimit:
    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        seen.append(len(body))
        return JSONResponse({"length": len(body)})

    return BodyLimit(Starlette(routes=[Route("/echo", echo, methods=["POST"])]), max_bytes=LIMIT)


async def _post(app: BodyLimit, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.post("/echo", **kw)  # type: ignore[arg-type]


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    seen: list[int] = []
    r = await _post(_app(seen), content=b"x" * (LIMIT + 1))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert seen == []  # the route never ran


async def test_a_chunked_body_is_refused_once_it_passes_the_limit() -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 256
            yield b"y" * 256

    seen: list[int] = []
    r = await _post(_app(seen), content=chunks())
    assert r.status_code == 413 and seen == []


async def test_a_body_within_the_limit_goes_through() -> None:
    seen: list[int] = []
    r = await _post(_app(seen), content=b"z" * LIMIT)
    assert r.status_code == 200 and r.json() == {"length": LIMIT} and seen == [LIMIT]


async def test_a_content_length_that_is_not_a_number_is_a_400() -> None:
    seen: list[int] = []
    r = await _post(_app(seen), content=b"{}", headers={"content-length": "12abc"})
    assert r.status_code == 400 and seen == []


async def test_every_service_app_refuses_an_oversized_body_before_authentication() -> None:
    from advocacy_common.registry import registered

    for r in registered():
        settings = r.settings_class(dev_mode=True, role="all", database_url="postgresql+asyncpg://x@127.0.0.1:1/x")
        app = r.create_app(settings)  # lifespan not run: nothing behind the limit could answer
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            resp = await c.post("/v1/anything", content=b"x" * (settings.max_body_bytes + 1))
        assert resp.status_code == 413, (r.name, resp.status_code, resp.text[:200])
