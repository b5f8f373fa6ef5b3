"""free_port: ports outside the kernel's ephemeral range, never the same one twice."""

from __future__ import annotations

import socket

from advocacy_dev.devstack import net


def test_ports_are_below_the_ephemeral_range_and_distinct() -> None:
    low, _ = net._ephemeral_range()
    ports = [net.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(p < low for p in ports), [p for p in ports if p >= low]


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = net.random.SystemRandom.randrange
    asked: list[int] = []

    def pick(self, a, b):  # type: ignore[no-untyped-def]
        """The busy port twice, then what the real generator says (any port next to the busy one
        may itself be taken by another test of this process: it was a fixed third pick, and flaky)."""
        asked.append(len(asked))
        return taken if len(asked) <= 2 else real(self, a, b)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(net, "_ephemeral_range", lambda: (max(taken + 2, 21001), 60999))
        monkeypatch.setattr(net.random.SystemRandom, "randrange", pick)
        port = net.free_port()
    assert port != taken and len(asked) >= 3  # the busy port was offered twice and refused twice
