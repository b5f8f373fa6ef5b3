"""A TLS-terminating TCP proxy for tests: clients speak TLS to it, it speaks plain TCP to a backend.

It stands in front of the embedded broker (Tansu's own ``--cert``/``--key`` cannot be used in 0.6.0:
the two options are declared mutually exclusive, docs/kafka.md), so the Kafka clients' SSL settings
are exercised for real: certificate verification against a CA file, hostname check, TLS framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import trustme

from advocacy_common.kafka_connection import KafkaConnection, SecurityProtocol


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


class TlsTansu:
    """The embedded broker behind a :class:`TlsProxy`, advertising the proxy's address: every client
    request after the bootstrap crosses TLS. The proxy runs on a loop of its own in a thread, so
    synchronous test code (a stack starting) does not stall it. ``env`` is what a service needs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        ca = trustme.CA()
        self.ca_file = tmp / "kafka-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.plain_port = _free_port("127.0.0.1")
        self.proxy = TlsProxy(context, f"127.0.0.1:{self.plain_port}")
        self.conn = KafkaConnection(
            self.proxy.address, security_protocol=SecurityProtocol.SSL, ca_file=str(self.ca_file)
        )
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.proxy.address,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CAFILE": str(self.ca_file),
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)

    def __enter__(self) -> TlsTansu:
        from advocacy_dev.devstack.broker import broker_binary

        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | {"RUST_LOG": "warn"}
        self._log = (self.tmp / "tansu.log").open("wb")
        self._proc = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{self.plain_port}",
                "--advertised-listener-url",
                f"tcp://{self.proxy.address}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.plain_port), 1).close()
                    break
                except OSError:
                    if self._proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("Tansu did not start") from None
                    time.sleep(0.05)
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None
            self._log.close()
