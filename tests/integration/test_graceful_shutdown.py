"""GracefulServer: a connection accepted just before shutdown, or idle between keep-alive requests,
still gets its answer when its request arrives just after the shutdown began.

Plain uvicorn closes both without an answer (the control cases), which is what scenario 7 saw as
dropped requests at SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from advocacy_common.entrypoint import GracefulServer
from advocacy_dev.devstack.net import free_port


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


@contextlib.asynccontextmanager
async def _serving(server_cls: type[uvicorn.Server]) -> AsyncIterator[tuple[uvicorn.Server, int]]:
    """A server of ``server_cls`` on a free port; on exit, waits for it to have shut down."""
    port = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, lifespan="off", log_config=None, http="httptools")
    server = server_cls(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield server, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def _ask_after_shutdown_began(
    server: uvicorn.Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bytes:
    """Begin the shutdown, wait until it is under way, then send a request: the whole answer."""
    server.should_exit = True
    await asyncio.sleep(0.3)  # the shutdown has begun: listeners closed
    try:
        writer.write(GET)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        answer = b""
    writer.close()
    return answer


async def _request_sent_after_shutdown_began(server_cls: type[uvicorn.Server]) -> bytes:
    async with _serving(server_cls) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)  # accepted by the server, no request yet
        server.should_exit = True
        await asyncio.sleep(0.3)
        with pytest.raises(OSError):  # the listeners are closed
            await asyncio.open_connection("127.0.0.1", port)
        return await _ask_after_shutdown_began(server, reader, writer)


async def test_fresh_connection_is_answered_during_shutdown() -> None:
    answer = await _request_sent_after_shutdown_began(GracefulServer)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.endswith(b"2\r\nok\r\n0\r\n\r\n"), answer  # the whole body, then the server closed


async def test_plain_uvicorn_drops_it_the_control() -> None:
    assert await _request_sent_after_shutdown_began(uvicorn.Server) == b""


async def _keep_alive_request_after_shutdown_began(server_cls: type[uvicorn.Server]) -> tuple[bytes, bytes]:
    async with _serving(server_cls) as (server, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(GET)
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)  # answered, kept alive
        return first, await _ask_after_shutdown_began(server, reader, writer)  # idle meanwhile


async def test_idle_keep_alive_connection_is_answered_during_shutdown_then_closed() -> None:
    first, second = await _keep_alive_request_after_shutdown_began(GracefulServer)
    assert first.startswith(b"HTTP/1.1 200") and b"connection: close" not in first.lower(), first
    assert second.startswith(b"HTTP/1.1 200"), second
    assert b"connection: close" in second.lower(), second  # told the client, then closed (read() ended)


async def test_plain_uvicorn_drops_the_keep_alive_request_the_control() -> None:
    _first, second = await _keep_alive_request_after_shutdown_began(uvicorn.Server)
    assert second == b""
