"""The listener's accept queue, read from the kernel: GracefulServer closes a listener only when
nothing completed is waiting in it (a connection left there is reset by the close)."""

from __future__ import annotations

import socket
import sys

import pytest

from advocacy_common.entrypoint import accept_queue_length


@pytest.mark.skipif(sys.platform != "linux", reason="tcpi_unacked of a listener is Linux's")
def test_the_queue_length_counts_completed_connections_not_yet_accepted() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        clients = []
        try:
            assert accept_queue_length(listener) == 0
            for _ in range(3):
                c = socket.create_connection(listener.getsockname(), timeout=5)
                clients.append(c)
            assert accept_queue_length(listener) == 3
            conn, _ = listener.accept()
            conn.close()
            assert accept_queue_length(listener) == 2
        finally:
            for c in clients:
                c.close()
