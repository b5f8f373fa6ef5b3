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
