"""Known datacenter ranges (issue 21's ``datacenter_range``): the lookup, the shipped table, and the
address plans of the tests and load generators (people) kept outside it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advocacy_sharing.adapters import ranges
from bench.redirect import PEOPLE_OCTETS, visitor_address
from tests.support import helpers, traffic

SMALL = ranges.NetworkRanges(["10.1.0.0/16", "10.2.0.0/24", "10.2.1.0/24", "2001:db8:1::/48"])


@pytest.mark.parametrize(
    ("network", "covered"),
    [
        ("10.1.7.0/24", True),
        ("10.1.0.0/16", True),
        ("10.1.255.255", True),
        ("10.0.255.0/24", False),  # just below
        ("10.3.0.0/24", False),  # just above the merged 10.2.0.0/23
        ("10.2.0.0/23", True),  # two adjacent /24s merged into one interval
        ("10.1.0.0/15", False),  # wider than any range: only partly inside
        ("2001:db8:1::/48", True),
        ("2001:db8:1:ff::/64", True),
        ("2001:db8:2::/48", False),
        ("10.1.7.0/33", False),
        ("10.1.7/24", False),
        ("10.1.7.0/x", False),
        ("\uff110.1.7.0/24", False),  # a full-width digit
        ("", False),
        ("::/129", False),
    ],
)
def test_covers(network: str, covered: bool) -> None:
    assert SMALL.covers(network) is covered


@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(8, 32)), max_size=20),
    st.integers(0, 2**32 - 1),
    st.integers(8, 32),
)
def test_covers_agrees_with_ipaddress(cidrs: list[tuple[int, int]], addr: int, prefix: int) -> None:
    nets = [ipaddress.IPv4Network((a, p), strict=False) for a, p in cidrs]
    mine = ipaddress.IPv4Network((addr, prefix), strict=False)
    # an aligned block inside a union of ranges lies inside one block of its canonical decomposition
    expected = any(mine.subnet_of(n) for n in ipaddress.collapse_addresses(nets))
    assert ranges.NetworkRanges(str(n) for n in nets).covers(str(mine)) is expected


def test_the_shipped_table_names_its_source_and_date() -> None:
    table = ranges.datacenter()
    head = "\n".join(table.header)
    assert "iporigin==" in head and "dataset built 20" in head and "refreshed: 20" in head
    assert len(table) > 1000


@pytest.mark.parametrize(
    ("network", "covered"),
    [
        ("40.107.1.0/24", True),  # Exchange Online Protection: Defender's mail scanning
        ("52.100.5.0/24", True),  # Exchange Online
        ("3.5.140.0/24", True),  # AWS
        ("34.64.0.0/24", True),  # Google Cloud
        ("66.249.66.0/24", True),  # Googlebot
        ("2600:1f18:1::/48", True),  # AWS IPv6
        ("172.64.1.0/24", False),  # Cloudflare: WARP and Private Relay users browse from it
        ("73.1.2.0/24", False),  # Comcast
        ("12.1.1.0/24", False),  # AT&T
        ("198.18.0.0/24", False),  # benchmarking range, used by tests
        ("203.0.113.0/24", False),  # documentation range, used by tests
    ],
)
def test_the_shipped_table(network: str, covered: bool) -> None:
    assert ranges.datacenter().covers(network) is covered
    assert (ranges.network_reason(network) == ranges.DATACENTER_RANGE) is covered


def test_the_people_of_tests_and_load_generators_are_outside_the_table() -> None:
    listed = [ipaddress.ip_network(c) for c in ranges.DATA_PATH.read_text().splitlines() if c and c[0] != "#"]
    octets = set(PEOPLE_OCTETS) | {73, 12, 36, 41}  # tests' visitor_ip nets and traffic's
    for octet in octets:
        eight = ipaddress.ip_network(f"{octet}.0.0.0/8")
        assert not [n for n in listed if n.version == 4 and n.overlaps(eight)], octet
    for i in (0, 1, 255, 65535, 65536, 1 << 20):
        for ip in (visitor_address(i), helpers.visitor_ip(i), traffic.visitor_ip(i)):
            assert ipaddress.ip_address(ip).is_global and int(ip.split(".")[0]) in octets


class _Table:
    """iporigin's table as its ``_data.dataset()`` returns it: labels and parallel columns."""

    labels = [("Amazon AWS", "hosting"), ("Cloudflare", "cdn"), ("Cogent", "hosting"), ("Googlebot", "bot")]
    v4 = [
        ("3.5.140.0", "3.5.143.255", 0),  # kept: four /24s
        ("3.6.0.10", "3.6.2.9", 0),  # kept: only 3.6.1.0/24 is whole
        ("104.16.0.0", "104.16.255.255", 1),  # a CDN: people browse through it
        ("38.0.0.0", "38.0.255.255", 2),  # a transit ISP
        ("66.249.64.0", "66.249.64.31", 3),  # narrower than a /24
        ("203.0.113.0", "203.0.113.255", 0),  # documentation, listed by a feed
    ]
    v4_starts = [int(ipaddress.ip_address(a)) for a, _, _ in v4]
    v4_ends = [int(ipaddress.ip_address(b)) for _, b, _ in v4]
    v4_labels = [lab for *_, lab in v4]
    v6_starts = [int(ipaddress.ip_address("2600:1f18::"))]
    v6_ends = [int(ipaddress.ip_address("2600:1f18:1:ffff:ffff:ffff:ffff:ffff"))]
    v6_labels = [0]


def test_the_refresh_keeps_whole_global_networks_of_clouds_and_crawlers() -> None:
    from advocacy_dev import botlists

    cidrs, stats = botlists.datacenter_ranges(_Table())
    assert cidrs == ["3.5.140.0/22", "3.6.1.0/24", "2600:1f18::/47"]
    assert stats["v4_narrower_than_network_dropped"] == 1 and stats["v4_not_global_dropped"] == 1


def test_no_private_or_documentation_network_is_shipped() -> None:
    for line in ranges.DATA_PATH.read_text().splitlines():
        if line and line[0] != "#":
            assert ipaddress.ip_network(line).is_global, line
