"""Reading a ``text/event-stream`` response in tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


class SSE:
    """Reads events from an open ``text/event-stream`` response: ``await sse.next(timeout)`` -> (time
    received, event name, parsed data); comments (keep-alives) are skipped."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def _event(self) -> tuple[float, str, Any]:
        import time

        import orjson

        name, data = "message", []
        async for line in self._lines:
            if line == "":
                if data:
                    return time.monotonic(), name, orjson.loads("\n".join(data))
                name = "message"
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        raise EOFError("stream ended")

    async def next(self, timeout: float) -> tuple[float, str, Any]:
        import asyncio

        return await asyncio.wait_for(self._event(), timeout)

    async def until(self, check: Callable[[Any], bool], timeout: float) -> tuple[float, Any]:
        """The first event whose data satisfies ``check``."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching event")
            at, _, data = await asyncio.wait_for(self._event(), left)
            if check(data):
                return at, data
