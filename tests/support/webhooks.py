"""A real webhook receiver on loopback, for partner-feed tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from advocacy_dev.devstack.net import free_port


async def read_body(receive: Any) -> bytes:
    """An ASGI request's whole body (a test receiver's: the senders under test bound their own)."""
    body = b""
    while True:
        msg = await receive()
        body += bytes(msg.get("body", b""))
        if not msg.get("more_body"):
            return body


class Receiver:
    """A real HTTP server on loopback that records webhook POSTs; fails the first ``fail_first``."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        status = 503 if len(self.received) <= self.fail_first else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class VerifyingReceiver:
    """A partner's endpoint that verifies each delivery with the ``standardwebhooks`` library and the
    secret(s) it holds now (``secrets``; an admin hands the partner a new one during a rotation).
    Answers 401 when no held secret verifies, else ``status`` (``retry_after`` as ``Retry-After``).
    ``verified`` holds (webhook-id, parsed body) of every verified delivery, ``refused`` the count
    of the others."""

    def __init__(self, *secrets: str, status: int = 204, retry_after: str | None = None) -> None:
        self.secrets = list(secrets)
        self.status = status
        self.retry_after = retry_after
        self.verified: list[tuple[str, Any]] = []
        self.refused = 0
        self.requests: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(headers)
        status = 401
        for secret in self.secrets:
            try:
                parsed = Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            self.verified.append((headers["webhook-id"], parsed))
            status = self.status
            break
        else:
            self.refused += 1
        extra = [(b"retry-after", self.retry_after.encode())] if self.retry_after and status != 401 else []
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


class Misbehaving:
    """A partner endpoint that misbehaves on purpose, written at the socket level (a real HTTP/1.1
    server on loopback). After reading the request it:

    - ``trickle``: sends its answer one byte every ``interval`` seconds, for ever (until the client
      hangs up): no read timeout ever trips;
    - ``huge``: answers 200 with a body of ``size`` bytes, as fast as the client reads;
    - ``hold``: answers 204 only once ``release`` is set (or stops when the client hangs up).

    ``arrived`` is set when a request was read in full; ``in_flight`` counts open connections;
    ``sent`` counts body bytes handed to the socket; ``hung_up`` is set when the client closed.
    """

    def __init__(self, mode: str, *, interval: float = 0.5, size: int = 1 << 30) -> None:
        self.mode = mode
        self.interval = interval
        self.size = size
        self.requests = 0
        self.in_flight = 0
        self.sent = 0
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.hung_up = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.in_flight += 1
        if (task := asyncio.current_task()) is not None:
            self.tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.requests += 1
            self.arrived.set()
            await getattr(self, "_" + self.mode)(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # cancelled: the test is over (asyncio would log a cancelled handler as an error)
        finally:
            self.in_flight -= 1
            self.hung_up.set()
            writer.close()

    async def _trickle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 1_000_000
        for i in range(len(answer)):
            writer.write(answer[i : i + 1])
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), self.interval) == b"":
                    return  # the client hung up

    async def _huge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % self.size)
        chunk = b"x" * 65536
        while self.sent < self.size:
            writer.write(chunk)
            self.sent += len(chunk)
            await writer.drain()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hang_up = asyncio.ensure_future(reader.read(1))
        release = asyncio.ensure_future(self.release.wait())
        await asyncio.wait([hang_up, release], return_when=asyncio.FIRST_COMPLETED)
        hang_up.cancel()
        release.cancel()
        if self.release.is_set():
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()


@contextlib.asynccontextmanager
async def serve_raw(endpoint: Misbehaving) -> AsyncIterator[str]:
    server = await asyncio.start_server(endpoint.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        endpoint.release.set()
        server.close()
        for task in endpoint.tasks:
            task.cancel()
        await asyncio.gather(*endpoint.tasks, return_exceptions=True)
        await server.wait_closed()


_RECEIVER_PROCESS = """
import sys, time, json
import uvicorn

out = open(sys.argv[2], "ab", buffering=0)

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    out.write(json.dumps({"at": time.time(), "body": body.decode()}).encode() + b"\\n")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""


class ReceiverProcess:
    """A well-behaved webhook endpoint in a process of its own (so a busy test process does not slow
    it down): it answers 204 and appends ``{"at": epoch seconds, "body": ...}`` lines to a file."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self.url = ""

    def received(self) -> list[dict[str, Any]]:
        import json

        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


@contextlib.asynccontextmanager
async def serve_process(path: Any) -> AsyncIterator[ReceiverProcess]:
    import subprocess
    import sys

    import httpx

    port = free_port()
    receiver = ReceiverProcess(path)
    proc = subprocess.Popen([sys.executable, "-c", _RECEIVER_PROCESS, str(port), str(path)])
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        async with httpx.AsyncClient() as c, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await c.get(f"http://127.0.0.1:{port}/ready")
                    break
                await asyncio.sleep(0.1)
        path.write_bytes(b"")  # the readiness probe is not a delivery
        yield receiver
    finally:
        proc.terminate()
        proc.wait(10)
