"""A request body larger than the service allows is answered 413 before it is read.

A declared ``Content-Length`` over the limit is refused at once, without reading a byte; a body sent
without one (chunked) is counted as it arrives and refused the moment it passes the limit. Before
this, no service limited bodies, and each was read whole before authentication: one client could
make a process hold gigabytes. The limit is ``MAX_BODY_BYTES`` (default 1 MiB: the largest legitimate
body, a content item with a 20,000-character body and 10,000-character captions for every network,
is under 150 KiB).
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from advocacy_common.errors import error_body

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps(error_body(code, message))
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        too_large = f"the request body is larger than {limit:,} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return await _refuse(send, 400, "bad_request", "Content-Length is not a number")
                if int(value) > limit:
                    return await _refuse(send, 413, "payload_too_large", too_large)
        received = 0
        started = refused = False

        async def counted() -> Message:
            # Past the limit: answer 413 ourselves, and tell the app the client went away, so it stops
            # reading; whatever it answers to that goes nowhere.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, 413, "payload_too_large", too_large)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:
                raise
