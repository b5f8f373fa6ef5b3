"""The outbound guard against a real local TLS server (a throwaway CA from ``trustme``): the client
connects to the address it checked (a resolver that answers something else the second time is
never asked again), and TLS still verifies the certificate, and sends SNI and Host, for the name."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import trustme

from advocacy_common.ssrf import IPAddress, OutboundGuard, UnsafeURL, bounded_request, outbound_client

NAME = "hooks.partner.test"


@dataclass
class TLSServer:
    port: int = 0
    sni: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_server(ca: trustme.CA, cert_for: str) -> AsyncIterator[TLSServer]:
    seen = TLSServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_for).configure_cert(context)
    context.sni_callback = lambda _sock, name, _ctx: seen.sni.append(name)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.peers.append(writer.get_extra_info("peername")[0])
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            seen.hosts.append(headers["host"])
            await reader.readexactly(int(headers.get("content-length", "0")))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    seen.port = server.sockets[0].getsockname()[1]
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


class Rebinding:
    """Answers the test server's address first, then the metadata service's."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return ["127.0.0.1"] if len(self.asked) == 1 else ["169.254.169.254"]


def only_the_test_server(addr: IPAddress) -> str | None:
    """Production refuses loopback; here loopback 127.0.0.1 plays the public partner."""
    return None if addr == ipaddress.ip_address("127.0.0.1") else "not the test server"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_the_checked_address_is_the_one_dialled_with_tls_for_the_name(ca: trustme.CA) -> None:
    resolver = Rebinding()
    guard = OutboundGuard(refuse=only_the_test_server, resolver=resolver)
    async with tls_server(ca, NAME) as server, outbound_client(guard, verify=trusting(ca)) as client:
        r = await bounded_request(
            client, "POST", f"https://{NAME}:{server.port}/hook", deadline=10, max_bytes=1024, content=b"{}"
        )
    assert (r.status_code, r.body) == (200, b"ok")
    assert resolver.asked == [NAME]  # resolved once: a second answer (169.254.169.254) was never asked for
    assert server.peers == ["127.0.0.1"]
    assert server.sni == [NAME]
    assert server.hosts == [f"{NAME}:{server.port}"]


async def test_the_certificate_is_checked_against_the_name_not_the_address(ca: trustme.CA) -> None:
    guard = OutboundGuard(refuse=only_the_test_server, resolver=Rebinding())
    async with tls_server(ca, "someone-else.test") as server, outbound_client(guard, verify=trusting(ca)) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await bounded_request(client, "GET", f"https://{NAME}:{server.port}/", deadline=10, max_bytes=1024)
    assert server.sni == [NAME]


async def test_each_new_connection_is_checked_again(ca: trustme.CA) -> None:
    resolver = Rebinding()
    guard = OutboundGuard(refuse=only_the_test_server, resolver=resolver)
    async with tls_server(ca, NAME) as server, outbound_client(guard, verify=trusting(ca)) as client:
        url = f"https://{NAME}:{server.port}/hook"
        assert (await bounded_request(client, "GET", url, deadline=10, max_bytes=1024)).status_code == 200
        # the server closed that connection; the next one resolves again, and is refused
        with pytest.raises(UnsafeURL, match=r"169\.254\.169\.254: not the test server"):
            await bounded_request(client, "GET", url, deadline=10, max_bytes=1024)
    assert server.peers == ["127.0.0.1"]


async def test_production_refuses_loopback_before_any_packet(ca: trustme.CA) -> None:
    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with tls_server(ca, NAME) as server, outbound_client(OutboundGuard(resolver=loopback)) as client:
        with pytest.raises(UnsafeURL, match="loopback"):
            await bounded_request(client, "GET", f"https://{NAME}:{server.port}/", deadline=10, max_bytes=1024)
    assert server.peers == []
