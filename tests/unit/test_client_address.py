from advocacy_common.net import ClientAddress


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
