"""Request ids (issue 15): a caller's X-Request-ID is kept when it looks like one, else one is made;
it comes back on the response and is on every log line written while the request is handled."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from advocacy_common.observability import RequestIdMiddleware, configure_logging

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _handler(request: Request) -> PlainTextResponse:
    logging.getLogger("advocacy.test").warning("handling %s", request.url.path)
    return PlainTextResponse("ok")


async def _get(headers: dict[str, str]) -> tuple[httpx.Response, list[dict[str, object]]]:
    configure_logging("test", json=True)
    stream = io.StringIO()
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    app = RequestIdMiddleware(Starlette(routes=[Route("/x", _handler)]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/x", headers=headers)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return r, [line for line in lines if line.get("logger") == "advocacy.test"]


async def test_a_valid_request_id_is_kept_returned_and_logged() -> None:
    r, logs = await _get({"X-Request-ID": "edge-7f3a.42"})
    assert r.headers["x-request-id"] == "edge-7f3a.42"
    assert logs and all(line["request_id"] == "edge-7f3a.42" for line in logs)


@pytest.mark.parametrize("given", [None, "x" * 129, "bad id with spaces", "a\\u00e9"])
async def test_otherwise_one_is_made(given: str | None) -> None:
    r, logs = await _get({} if given is None else {"X-Request-ID": given})
    rid = r.headers["x-request-id"]
    assert rid != given and len(rid) == 32 and int(rid, 16) >= 0
    assert logs and logs[0]["request_id"] == rid


async def test_nothing_of_a_request_is_left_on_the_next_log_line() -> None:
    await _get({"X-Request-ID": "first"})
    stream = io.StringIO()
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    logging.getLogger("advocacy.test").warning("between requests")
    assert "first" not in stream.getvalue()
