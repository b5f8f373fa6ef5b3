"""Outbound URLs we fetch or POST to (partner webhooks) must not reach inside the network.

A URL is refused unless it is http(s) without credentials and EVERY address its host resolves to
is public: loopback, private, link-local (169.254.169.254, the cloud metadata service), multicast,
reserved and unspecified addresses are refused after DNS resolution, and numeric tricks
(``0x7f000001``, ``2130706433``, ``127.1``) resolve to what they are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    pass


def _blocked(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


def check_url_shape(url: str) -> tuple[str, int]:
    """Scheme, credentials and host checks that need no DNS; returns (host, port)."""
    parts = urlsplit(url)
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


async def resolve_public(url: str) -> list[str]:
    """Resolve the URL's host; raise UnsafeURL if any address is not public. Returns the addresses."""
    host, port = check_url_shape(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UnsafeURL(f"cannot resolve {host!r}: {e}") from e
    addresses = sorted({str(info[4][0]) for info in infos})
    for a in addresses:
        if _blocked(ipaddress.ip_address(a.split("%", 1)[0])):
            raise UnsafeURL(f"{host!r} resolves to a non-public address ({a})")
    if not addresses:
        raise UnsafeURL(f"{host!r} resolves to nothing")
    return addresses
