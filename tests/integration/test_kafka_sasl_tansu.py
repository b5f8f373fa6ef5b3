"""SASL on the embedded broker, as far as it goes (docs/kafka.md, "What the embedded broker supports").

Tansu 0.6.0 with ``--authentication`` offers SCRAM-SHA-256/512 in the SASL handshake but has no user:
credentials are created with AlterUserScramCredentials, which it refuses before authentication, and
its memory storage forgets them on restart. So no client logs in, and SASL is covered by the client
configuration tests (tests/unit/test_kafka_connection.py). This test pins that: when a newer broker
lets a SCRAM client in, it fails, and SASL should get an end-to-end test here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from advocacy_common.kafka import make_admin
from advocacy_common.kafka_connection import KafkaConnection, SaslMechanism, SecurityProtocol
from advocacy_dev.devstack.broker import broker_binary
from advocacy_dev.devstack.net import free_port


@pytest.fixture
def authenticating_tansu(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | {"RUST_LOG": "error"}
    with (tmp_path / "tansu.log").open("wb") as log:
        proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--authentication"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, "Tansu did not start"
                    time.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.mark.parametrize(
    "mechanism", [None, SaslMechanism.PLAIN, SaslMechanism.SCRAM_SHA_256, SaslMechanism.SCRAM_SHA_512]
)
async def test_no_client_logs_in_to_tansu_with_authentication(
    authenticating_tansu: str, mechanism: SaslMechanism | None
) -> None:
    if mechanism is None:
        conn = KafkaConnection(authenticating_tansu)
    else:
        conn = KafkaConnection(
            authenticating_tansu,
            security_protocol=SecurityProtocol.SASL_PLAINTEXT,
            sasl_mechanism=mechanism,
            username="advocacy",
            password="no-such-user",
        )
    admin = make_admin(conn, request_timeout_ms=3000)
    # aiokafka 0.14 reports a refused SCRAM login as KeyError('v') (it does not read the server's e=)
    with pytest.raises((Exception, TimeoutError)):
        await asyncio.wait_for(admin.start(), 15)
        await asyncio.wait_for(admin.list_topics(), 5)
    with contextlib.suppress(Exception):
        await admin.close()
