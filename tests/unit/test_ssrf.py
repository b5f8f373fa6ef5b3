import ipaddress

import pytest

from advocacy_common.ssrf import (
    REFUSED_V4,
    REFUSED_V6,
    OutboundGuard,
    UnsafeURL,
    check_url_shape,
    refusal,
    resolve_public,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
async def test_internal_addresses_are_refused_after_resolution(url: str) -> None:
    with pytest.raises(UnsafeURL):
        await resolve_public(url)


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "file:///etc/passwd", "ftp://example.com/", "https://user:pw@example.com/", "http:///x"],
)
def test_bad_shapes_are_refused_without_dns(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url_shape(url)


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".com", "\udcff.com", "..."])
async def test_a_name_idna_cannot_encode_is_refused_not_an_error(host: str) -> None:
    """getaddrinfo raises UnicodeError, not gaierror, for these: a 500 where a 422 belongs."""
    with pytest.raises(UnsafeURL, match="cannot resolve"):
        await resolve_public(f"https://{host}/hook")


async def test_public_literal_address_is_allowed() -> None:
    assert await resolve_public("https://93.184.215.14/hook") == ["93.184.215.14"]


# The refused ranges, pinned: a change to the table is a change to this list, made on purpose.
PINNED_V4 = [
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
]
PINNED_V6 = [
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
]


def test_the_refused_ranges_are_our_own_pinned_table() -> None:
    assert list(REFUSED_V4) == PINNED_V4
    assert list(REFUSED_V6) == PINNED_V6


@pytest.mark.parametrize(
    ("address", "why"),
    [
        # each IPv4 entry, at its first and last address
        *[(str(n[0]), w) for n, w in ((ipaddress.ip_network(n), w) for n, w in PINNED_V4)],
        *[(str(n[-1]), w) for n, w in ((ipaddress.ip_network(n), w) for n, w in PINNED_V4[1:-1])],
        ("192.0.0.9", "IETF protocol assignments"),  # PCP anycast: "global" in Python >= 3.12.4, refused here
        ("100.127.255.255", "shared address space (carrier-grade NAT)"),
        ("198.19.255.255", "benchmarking"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("100::1", "discard-only"),  # is_global differs between Python versions
        ("2001:2::1", "IETF protocol assignments"),  # benchmarking
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("fd00::1", "unique local"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local (deprecated)"),
        ("ff02::1", "multicast"),
        ("::a00:1", "not global unicast (outside 2000::/3)"),  # IPv4-compatible, deprecated
        ("::ffff:0:a00:1", "not global unicast (outside 2000::/3)"),  # IPv4-translated (SIIT)
        ("64:ff9b:1:1::808:808", "local-use NAT64 (only the /96 form is decoded)"),
    ],
)
def test_the_table_names_why_an_address_is_refused(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:169.254.169.254", "IPv4-mapped address of 169.254.169.254"),
        ("2002:7f00:1::1", "6to4 address of 127.0.0.1"),
        ("2002:a9fe:a9fe:1::5", "6to4 address of 169.254.169.254"),
        ("2002:c0a8:101::", "6to4 address of 192.168.1.1"),
        ("64:ff9b::7f00:1", "NAT64 address of 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "NAT64 address of 169.254.169.254"),
        ("64:ff9b:1::a00:1", "NAT64 address of 10.0.0.1"),
        # Teredo (RFC 4380's example, server 65.54.227.120): the client is the inverted last 32 bits
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo address of 127.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo address of 192.0.2.45"),
        ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "Teredo address of 10.0.0.1"),  # a private server
        # ISATAP, any prefix (here a global one), u/g bits either way
        ("2a00:1450:4001::5efe:a9fe:a9fe", "ISATAP address of 169.254.169.254"),
        ("2a00:1450:4001::200:5efe:c0a8:101", "ISATAP address of 192.168.1.1"),
        ("fe80::5efe:a00:1", "ISATAP address of 10.0.0.1"),
    ],
)
def test_an_ipv4_address_inside_ipv6_is_judged_by_the_ipv4_rules(address: str, carried: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None and why.startswith(carried + ": ")


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "1.1.1.1",
        "192.31.196.1",  # AS112: globally reachable
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:93.184.215.14",
        "64:ff9b::808:808",
        "64:ff9b:1::808:808",
        "2002:5db8:d70e::1",  # 6to4 of 93.184.215.14
        "2001:0:4136:e378:8000:63bf:a247:28f1",  # Teredo of 93.184.215.14 via 65.54.227.120
        "2a00:1450:4001::200:5efe:5db8:d70e",  # ISATAP of 93.184.215.14
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


async def test_one_refused_address_among_public_ones_refuses_the_host() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "2002:a9fe:a9fe::1", "1.1.1.1"]

    with pytest.raises(UnsafeURL, match=r"6to4 address of 169\.254\.169\.254"):
        await OutboundGuard(resolver=resolver).resolve("partner.example", 443)
