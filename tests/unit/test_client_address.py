from advocacy_common.net import MAX_FORWARDED, ClientAddress


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    addr = ClientAddress(["10.0.0.0/8"])
    assert addr.resolve("10.1.2.3", "198.51.100.7") == "198.51.100.7"
    assert addr.resolve("203.0.113.9", "198.51.100.7") == "203.0.113.9"  # untrusted peer: header ignored


def test_rightmost_untrusted_hop_is_the_client() -> None:
    addr = ClientAddress(["10.0.0.0/8"])
    # a client can prepend anything; only what our proxies appended counts
    assert addr.resolve("10.0.0.1", "1.1.1.1, 198.51.100.7, 10.0.0.2") == "198.51.100.7"


def test_garbage_in_header_falls_back_to_peer() -> None:
    addr = ClientAddress(["127.0.0.0/8"])
    assert addr.resolve("127.0.0.1", "not-an-ip") == "127.0.0.1"


def test_a_huge_forwarded_header_keeps_only_its_last_hops() -> None:
    """8 KB X-Forwarded-For values filled the redirect's address cache (keyed by the header)."""
    addresses = ClientAddress(["10.0.0.0/8"])
    junk = ", ".join(f"203.0.{i // 256}.{i % 256}" for i in range(600))  # ~8 KB
    header = f"{junk}, 198.51.100.7, 10.0.0.2"
    trimmed = ClientAddress.trim(header)
    assert len(trimmed) <= MAX_FORWARDED and trimmed.endswith("198.51.100.7, 10.0.0.2")
    first = trimmed.split(",")[0].strip()
    assert first.startswith("203.0.") and first.count(".") == 3  # cut at a comma, not mid-address
    assert addresses.resolve("10.0.0.1", header) == "198.51.100.7"
    assert ClientAddress.trim("1.2.3.4, 10.0.0.2") == "1.2.3.4, 10.0.0.2"


def test_the_ipv4_fast_path_agrees_with_ipaddress() -> None:
    """ipv4_value is the redirect's parse of a visitor's address (ADR 0029): where it answers, it
    answers what ipaddress does, and it answers for every address ipaddress writes."""
    import ipaddress

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from advocacy_common.net import ipv4_value

    octet = st.one_of(st.integers(0, 999).map(str), st.sampled_from(["", "00", "01", "007", "२", "1 ", "+1", "0x1"]))
    quads = st.lists(octet, min_size=3, max_size=5).map(".".join)

    @settings(max_examples=400, deadline=None)
    @given(
        st.one_of(quads, st.text(max_size=20), st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))))
    )
    def agrees(text: str) -> None:
        try:
            parsed = ipaddress.ip_address(text)
        except ValueError:
            parsed = None
        value = ipv4_value(text)
        if isinstance(parsed, ipaddress.IPv4Address):
            assert value == int(parsed) and str(parsed) == text
        else:
            assert value is None

    agrees()


def test_trust_and_the_client_without_ipaddress_match_the_networks() -> None:
    addr = ClientAddress(["10.0.0.0/8", "192.168.1.0/24", "::1/128"])
    assert addr.is_trusted("10.255.255.255") and addr.is_trusted("192.168.1.0")
    assert not addr.is_trusted("11.0.0.0") and not addr.is_trusted("192.168.2.1")
    assert addr.is_trusted("::1") and not addr.is_trusted("::2") and not addr.is_trusted("010.0.0.1")
    assert addr.resolve("::1", "198.51.100.7, 192.168.1.9") == "198.51.100.7"
    assert addr.resolve("10.0.0.1", "2001:db8::1, 10.0.0.2") == "2001:db8::1"
    assert addr.resolve("10.0.0.1", "2001:DB8:0::1") == "2001:db8::1"  # written back as ipaddress does
    assert addr.resolve("10.0.0.1", "010.1.1.1") == "10.0.0.1"  # a leading zero is garbage, as before
