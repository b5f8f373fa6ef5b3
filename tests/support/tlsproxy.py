"""A TLS-terminating TCP proxy for tests: clients speak TLS to it, it speaks plain TCP to a backend.

It stands in front of the embedded broker (Tansu's own ``--cert``/``--key`` cannot be used in 0.6.0:
the two options are declared mutually exclusive, docs/kafka.md), so the Kafka clients' SSL settings
are exercised for real: certificate verification against a CA file, hostname check, TLS framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl


class TlsProxy:
    """Listens on ``host:port`` with ``context`` (a server context) and pipes each connection to
    ``backend`` (``host:port``). ``connections`` counts accepted TLS connections."""

    def __init__(self, context: ssl.SSLContext, backend: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.context = context
        self.backend_host, _, backend_port = backend.rpartition(":")
        self.backend_port = int(backend_port)
        self.host = host
        self.port = port or _free_port(host)
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.context)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._pipes):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.backend_host, self.backend_port)
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port
