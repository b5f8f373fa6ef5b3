"""Who is asking: the client address, believing X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


# An X-Forwarded-For longer than this keeps only its last hops (16 IPv6 addresses fit).
MAX_FORWARDED = 640


class ClientAddress:
    """Resolves the client IP from the peer address and X-Forwarded-For.

    Walks X-Forwarded-For from the right, skipping trusted proxies; the first untrusted hop is the
    client. From an untrusted peer the header is ignored: anyone could have written it.
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = parse_networks(trusted)

    @lru_cache(maxsize=4096)  # noqa: B019 - bounded, per instance lifetime is the process
    def is_trusted(self, ip: str) -> bool:
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
            if not self.is_trusted(hop):
                return _valid_or(hop, peer)
        return _valid_or(hops[0], peer) if hops else peer


def _valid_or(candidate: str, fallback: str) -> str:
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return fallback
