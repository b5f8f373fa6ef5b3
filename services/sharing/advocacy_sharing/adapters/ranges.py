"""Known datacenter ranges: the verdict's ``datacenter_range`` reason (issue 21).

A person reads a shared post on a phone or a laptop, at home, at work or on a mobile network; a mail
security scanner, a link checker or an AI agent fetches it from a cloud. ``data/datacenter_ranges.txt``
lists the networks of clouds, hosting providers and declared crawlers, written by
``python -m advocacy_dev.botlists ranges`` from the table of the PyPI package iporigin (pinned there;
the file's header names the version, the dataset's date and what is left out: CDNs, VPNs and Tor,
which people browse through). The verdict worker sees a visitor's network, not the address (IPv4 /24,
IPv6 /48: ``domain.network_of``); a network inside a listed range is ``datacenter_range``.

Lookup: the ranges are merged into sorted, disjoint intervals per address family, and one bisect
finds the only interval that can hold a network (~1 µs; figures in bench/RESULTS.md). The table is
read once, on the first lookup (~0.1 s, ~3 MB), in the verdict worker only.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from functools import cache
from pathlib import Path

DATA_PATH = Path(__file__).parent / "data" / "datacenter_ranges.txt"
DATACENTER_RANGE = "datacenter_range"


class NetworkRanges:
    """A set of IPv4 and IPv6 ranges answering "is this network inside one of them?"."""

    __slots__ = ("_ends", "_starts", "header")

    def __init__(self, cidrs: Iterable[str], header: Iterable[str] = ()) -> None:
        self.header = list(header)
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for raw in cidrs:
            net = ipaddress.ip_network(raw.strip())
            spans[net.version].append((int(net.network_address), int(net.broadcast_address)))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in spans.items():
            starts: list[int] = []
            ends: list[int] = []
            for lo, hi in sorted(items):
                if ends and lo <= ends[-1] + 1:  # overlapping or adjacent: one interval
                    ends[-1] = max(ends[-1], hi)
                else:
                    starts.append(lo)
                    ends.append(hi)
            self._starts[version], self._ends[version] = starts, ends

    def __len__(self) -> int:
        return sum(len(s) for s in self._starts.values())

    def covers(self, network: str) -> bool:
        """``network`` (a CIDR or an address) lies wholly inside one range. False for garbage."""
        span = _span(network)
        if span is None:
            return False
        version, lo, hi = span
        starts = self._starts[version]
        i = bisect.bisect_right(starts, lo) - 1
        return i >= 0 and hi <= self._ends[version][i]


def _span(network: str) -> tuple[int, int, int] | None:
    """(version, first, last address) of a CIDR or an address; None for garbage. IPv4 is parsed by
    hand: ``ipaddress.ip_network`` alone costs ~8 µs, the whole lookup this way ~1.5 µs."""
    head, slash, plen = network.partition("/")
    if not network.isascii() or (slash and not plen.isdigit()):
        return None
    try:
        if ":" in head:
            version, bits, addr = 6, 128, int(ipaddress.IPv6Address(head))
        else:
            parts = head.split(".")
            if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts):
                return None
            a, b, c, d = (int(p) for p in parts)
            version, bits, addr = 4, 32, (a << 24) | (b << 16) | (c << 8) | d
        prefix = int(plen) if slash else bits
    except ValueError:
        return None
    if not 0 <= prefix <= bits:
        return None
    host = (1 << (bits - prefix)) - 1
    return version, addr & ~host, addr | host


def parse(text: str) -> NetworkRanges:
    lines = text.splitlines()
    return NetworkRanges(
        (ln for ln in lines if ln.strip() and not ln.startswith("#")),
        (ln[1:].strip() for ln in lines if ln.startswith("#")),
    )


@cache
def datacenter() -> NetworkRanges:
    """The shipped table, read on first use."""
    return parse(DATA_PATH.read_text())


def loaded() -> bool:
    return datacenter.cache_info().currsize > 0


def network_reason(ip_network: str | None) -> str | None:
    """``datacenter_range`` when the visitor's network is inside a known datacenter range, else None."""
    if ip_network and datacenter().covers(ip_network):
        return DATACENTER_RANGE
    return None
