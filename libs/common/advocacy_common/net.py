"""Who is asking: the client address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


# An X-Forwarded-For longer than this keeps only its last hops (16 IPv6 addresses fit).
MAX_FORWARDED = 640

_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0-255, no leading zero, ASCII digits only
_IPV4 = re.compile(r"\.".join([_OCTET] * 4))


def is_ipv4(text: str) -> bool:
    """``text`` is an IPv4 address as ``ipaddress`` writes it (see :func:`ipv4_value`)."""
    return _IPV4.fullmatch(text) is not None


def ipv4_value(text: str) -> int | None:
    """The value of an IPv4 address written as ``ipaddress`` accepts and writes it (four decimal
    octets, no leading zeros), else None (IPv6, garbage: ask ``ipaddress``). One regular expression:
    the redirect resolves a new visitor's address on its path, where ``ipaddress.ip_address`` (twice
    per forwarded hop, and the string written back) cost more than the rest of a cache miss (ADR 0029)."""
    m = _IPV4.fullmatch(text)
    if m is None:
        return None
    a, b, c, d = m.groups()
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


class ClientAddress:
    """Resolves the client IP from the peer address and X-Forwarded-For.

    Walks X-Forwarded-For from the right, skipping trusted proxies; the first untrusted hop is the
    client. From an untrusted peer the header is ignored: anyone could have written it.
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = parse_networks(trusted)
        self._trusted_v4 = tuple(
            (int(net.network_address), int(net.broadcast_address)) for net in self.trusted if net.version == 4
        )

    @lru_cache(maxsize=4096)  # noqa: B019 - bounded, per instance lifetime is the process
    def is_trusted(self, ip: str) -> bool:
        """Whether ``ip`` (a peer: this host's neighbours, few) is a trusted proxy."""
        value = ipv4_value(ip)
        return self._trusts_v4(value) if value is not None else self._trusts_parsed(ip)

    def _trusts_v4(self, value: int) -> bool:
        return any(lo <= value <= hi for lo, hi in self._trusted_v4)

    def _trusts_parsed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    @staticmethod
    def trim(forwarded_for: str) -> str:
        """The part of an ``X-Forwarded-For`` value that can matter: its last hops, at most
        :data:`MAX_FORWARDED` characters (cut at a comma). The client is the first untrusted hop from
        the right; a header of 8 KB is someone filling caches keyed by it (issue 12)."""
        if len(forwarded_for) <= MAX_FORWARDED:
            return forwarded_for
        return forwarded_for[-MAX_FORWARDED:].partition(",")[2]

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        peer = peer or ""
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        hops = [h.strip() for h in self.trim(forwarded_for).split(",") if h.strip()]
        for hop in reversed(hops):
            value = ipv4_value(hop)
            if value is not None:  # the common case, without ipaddress
                if not self._trusts_v4(value):
                    return hop  # as ipaddress would write it back
            elif not self._trusts_parsed(hop):
                return _valid_or(hop, peer)
        return _valid_or(hops[0], peer) if hops else peer


def _valid_or(candidate: str, fallback: str) -> str:
    if is_ipv4(candidate):
        return candidate  # as ipaddress would write it back
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return fallback
