"""The guard every outbound call goes through: partner webhooks today, chat webhooks and identity-provider
keys later. One module, so every caller refuses the same addresses and connects the same way.

What is refused. A URL must be http(s) without credentials, and EVERY address its host resolves to
must be public. "Public" is decided by our own table (:data:`REFUSED_V4`, :data:`REFUSED_V6`), built
from the IANA special-purpose address registries, not by Python's ``ipaddress`` flags, whose tables
change between Python versions (``is_global`` of 100::/64, 2001::/23 exceptions, 192.0.0.0/24 ...):
what we refuse does not change when the interpreter does. A test pins the table.

IPv6 addresses that carry an IPv4 address are judged by that IPv4 address: IPv4-mapped
(::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d, and the /96 form of the local-use 64:ff9b:1::/48),
6to4 (2002:AABB:CCDD::/48), Teredo (2001:0::/32: server in bits 32-63, client bit-inverted in the
last 32 bits; both must pass) and ISATAP (interface id [0-3]00:5efe:a.b.c.d, any prefix). Without
this, 2002:7f00:1:: or 64:ff9b::a9fe:a9fe reach loopback or the metadata service through a relay.

How we connect. Resolving, checking, then letting httpx resolve again is a DNS-rebinding hole: the
second answer can be 127.0.0.1. :func:`outbound_client` returns an httpx client whose network
backend resolves once, checks every address, and opens the TCP connection to an address it checked.
TLS is then started by httpcore with the URL's hostname, so SNI, the ``Host`` header and the
certificate check are those of the hostname, not of the address (docs/adr/0009-outbound-guard.md).
Environment proxies are off (a proxy would resolve the name itself), redirects are not followed.

:func:`bounded_request` adds what every outbound call also needs: a total deadline (not per phase:
a server that trickles a byte every few seconds never trips a read timeout) and a cap on the
response bytes read (undecoded: no gzip bomb).

httpx and httpcore are imported by the first client built, not by this module: a process that never
calls out (a worker, most of a service's life) does not carry them (issue 19).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpcore
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses the host resolves to, in the order to try them."""
Refusal = Callable[[IPAddress], str | None]
"""An address -> why it is refused, or None when it may be reached."""


class UnsafeURL(ValueError):
    pass


# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates), plus multicast and class E.
# Entries IANA marks globally reachable (AS112 192.31.196.0/24 and 192.175.48.0/24, AMT 192.52.193.0/24)
# are not here. The PCP and TURN anycast addresses inside 192.0.0.0/24 are refused with the block:
# no webhook lives there. Most specific first: the first match names the reason.
REFUSED_V4: tuple[tuple[str, str], ...] = (
    ("255.255.255.255/32", "limited broadcast"),
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (class E)"),
)

# IANA IPv6 Special-Purpose Address Registry, then everything outside 2000::/3, the only block IANA
# has allocated for global unicast (IPv6 Address Space registry). The prefixes that carry an IPv4
# address (mapped, NAT64, 6to4, Teredo) are decoded before this table is read. 2001::/23 is refused
# whole: its globally reachable members are protocol anycast and ORCHID/DET identifiers, not servers.
REFUSED_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64 (only the /96 form is decoded)"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing (SRv6) SIDs"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
    ("::/3", "not global unicast (outside 2000::/3)"),
    ("4000::/2", "not global unicast (outside 2000::/3)"),
    ("8000::/1", "not global unicast (outside 2000::/3)"),
)

_V4 = tuple((ipaddress.IPv4Network(n), why) for n, why in REFUSED_V4)
_V6 = tuple((ipaddress.IPv6Network(n), why) for n, why in REFUSED_V6)

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def embedded_ipv4(addr: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """(how, the IPv4 addresses) an IPv6 address carries, or None. ``how`` names the mechanism."""
    n = int(addr)
    low32 = ipaddress.IPv4Address(n & 0xFFFFFFFF)
    if addr in _MAPPED:
        return "IPv4-mapped", [low32]
    if addr in _NAT64 or addr in _NAT64_LOCAL:
        return "NAT64", [low32]
    if addr in _SIX_TO_FOUR:
        return "6to4", [ipaddress.IPv4Address((n >> 80) & 0xFFFFFFFF)]
    if addr in _TEREDO:
        server = ipaddress.IPv4Address((n >> 64) & 0xFFFFFFFF)
        return "Teredo", [server, ipaddress.IPv4Address(~n & 0xFFFFFFFF)]
    # ISATAP (RFC 5214): interface id 0000:5efe or 0200:5efe (u/g bits free) + the IPv4 address.
    if (n >> 32) & 0xFCFFFFFF == 0x00005EFE:
        return "ISATAP", [low32]
    return None


def _table(addr: IPAddress) -> str | None:
    rows = _V4 if isinstance(addr, ipaddress.IPv4Address) else _V6
    for net, why in rows:
        if addr in net:
            return why
    return None


def refusal(addr: IPAddress) -> str | None:
    """Why ``addr`` must not be reached, or None when it is public (our table, any Python)."""
    if isinstance(addr, ipaddress.IPv4Address):
        return _table(addr)
    carried = embedded_ipv4(addr)
    if carried is not None:
        how, v4s = carried
        for v4 in v4s:
            if (why := _table(v4)) is not None:
                return f"{how} address of {v4}: {why}"
        if how != "ISATAP":  # the prefix itself only says how to reach the IPv4 address
            return None
    return _table(addr)


def allow_all(_: IPAddress) -> str | None:
    """The refusal of labs and tests (``*_allow_private``): every address may be reached."""
    return None


def check_url_shape(url: str) -> tuple[str, int]:
    """Scheme, credentials and host checks that need no DNS; returns (host, port)."""
    try:
        parts = urlsplit(url)
    except ValueError as e:  # an unbalanced or invalid [IPv6] host
        raise UnsafeURL(f"bad URL: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("only http(s) URLs are allowed")
    if parts.username or parts.password:
        raise UnsafeURL("URLs with credentials are refused")
    if not parts.hostname:
        raise UnsafeURL("URL needs a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise UnsafeURL(f"bad port: {e}") from e
    return parts.hostname, port


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:  # UnicodeError: a name IDNA cannot encode ("a..b", 64+ chars)
        raise UnsafeURL(f"cannot resolve {host!r}: {e}") from e
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class OutboundGuard:
    """Resolve once, refuse if any address is refused; the addresses returned are the ones to dial."""

    refuse: Refusal = refusal
    resolver: Resolver = system_resolver

    @classmethod
    def for_settings(cls, *, allow_private: bool) -> OutboundGuard:
        return cls(refuse=allow_all if allow_private else refusal)

    async def resolve(self, host: str, port: int) -> list[str]:
        addresses = await self.resolver(host, port)
        if not addresses:
            raise UnsafeURL(f"{host!r} resolves to nothing")
        for a in addresses:
            why = self.refuse(ipaddress.ip_address(a.split("%", 1)[0]))
            if why is not None:
                raise UnsafeURL(f"{host!r} resolves to a non-public address ({a}: {why})")
        return addresses


async def resolve_public(url: str) -> list[str]:
    """Resolve the URL's host; raise UnsafeURL if any address is not public. Returns the addresses."""
    host, port = check_url_shape(url)
    return sorted(await OutboundGuard().resolve(host, port))


def _guarded_transport(
    guard: OutboundGuard, *, verify: ssl.SSLContext | bool, limits: httpx.Limits
) -> httpx.AsyncHTTPTransport:
    return _guarded_transport_class()(guard, verify=verify, limits=limits)


@functools.cache
def _guarded_transport_class() -> Callable[..., httpx.AsyncHTTPTransport]:
    """The transport class of :func:`outbound_client`, made on first use (httpx and httpcore are
    imported then)."""
    import httpcore
    import httpx

    class _GuardedBackend(httpcore.AsyncNetworkBackend):
        """httpcore's network layer, with the name resolved and checked here, and only here."""

        def __init__(self, guard: OutboundGuard) -> None:
            self.guard = guard
            self.inner = httpcore.AnyIOBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            failure: Exception | None = None
            for address in await self.guard.resolve(host, port):
                try:
                    # An address literal: the inner backend has nothing left to resolve.
                    return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                    failure = e
            assert failure is not None
            raise failure

        async def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
        ) -> httpcore.AsyncNetworkStream:
            raise UnsafeURL("outbound calls do not use unix sockets")

        async def sleep(self, seconds: float) -> None:
            await self.inner.sleep(seconds)

    class _GuardedTransport(httpx.AsyncHTTPTransport):
        """httpx's transport (request/response mapping, error mapping) over a pool on the guarded backend.

        httpx 0.28 has no ``network_backend`` argument, so the pool it built is replaced; the real-TLS
        and rebinding tests fail if a new httpx stops going through ``_pool``."""

        def __init__(self, guard: OutboundGuard, *, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
            super().__init__(verify=verify, trust_env=False, limits=limits)
            context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=_GuardedBackend(guard),
            )

    return _GuardedTransport


def outbound_client(
    guard: OutboundGuard,
    *,
    timeout: float = 10.0,
    verify: ssl.SSLContext | bool = True,
    max_connections: int = 32,
) -> httpx.AsyncClient:
    """The only way to build a client for URLs a tenant or a setting gave us."""
    import httpx

    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        transport=_guarded_transport(guard, verify=verify, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


@dataclass(frozen=True)
class BoundedResponse:
    status_code: int
    headers: httpx.Headers
    body: bytes = b""
    truncated: bool = False  # the answer had more than max_bytes; the rest was not read


async def bounded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> BoundedResponse:
    """One request, all of it (resolve, connect, TLS, send, status, headers, body) within
    ``deadline`` seconds (TimeoutError past it), reading at most ``max_bytes`` of the body as sent
    (no decompression). Raises UnsafeURL for a refused URL or address, httpx.HTTPError otherwise."""
    check_url_shape(url)
    sent = {"accept-encoding": "identity", **(headers or {})}
    async with asyncio.timeout(deadline):
        async with client.stream(method, url, headers=sent, content=content) as r:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            async for chunk in r.aiter_raw():
                size += len(chunk)
                if size > max_bytes:
                    chunks.append(chunk[: max_bytes - (size - len(chunk))])
                    truncated = True
                    break
                chunks.append(chunk)
            return BoundedResponse(r.status_code, r.headers, b"".join(chunks), truncated)
