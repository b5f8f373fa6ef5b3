"""Every Kafka client of ours over TLS, for real: a TLS-terminating proxy in front of the embedded
broker, which advertises the proxy's address (Tansu's ``--advertised-listener-url``), so after the
bootstrap every request (metadata, produce, fetch, group coordination, commits) goes through TLS.

Also what the idempotence probe detects on Tansu: no producer ids (so ``auto`` means off there and
``on`` refuses).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from advocacy_common.kafka import (
    IdempotenceUnavailable,
    broker_grants_producer_ids,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
    resolve_idempotence,
)
from advocacy_common.kafka_connection import IdempotenceMode, KafkaConnection, SecurityProtocol
from advocacy_common.runtime import Runtime, ServiceDefinition
from advocacy_common.settings import ServiceSettings
from tests.support.tlsproxy import TlsTansu


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsTansu]:
    with TlsTansu(tmp_path) as broker:
        yield broker


async def test_producer_consumer_and_group_over_tls(tls_broker: TlsTansu) -> None:
    conn = tls_broker.conn
    topic, group = "advocacy.test.tls", "advocacy-test-tls"
    await ensure_topics(conn, [topic], 4)  # the admin client over TLS

    producer = make_producer(conn)
    await producer.start()
    try:
        for i in range(40):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()

    # a consumer group of two members over TLS: they split the partitions, read everything, commit
    members = [make_consumer(conn, group, [topic], session_timeout_ms=6000) for _ in range(2)]
    for m in members:
        await m.start()
    seen: dict[int, set[str]] = {0: set(), 1: set()}
    try:
        deadline = time.monotonic() + 60
        while len(seen[0] | seen[1]) < 40 or not all(m.assignment() for m in members):
            assert time.monotonic() < deadline, f"read {len(seen[0] | seen[1])} of 40 over TLS"
            for n, m in enumerate(members):
                batches = await m.getmany(timeout_ms=200)
                for records in batches.values():
                    seen[n].update(r.value.decode() for r in records if r.value is not None)
                if batches:
                    await m.commit()
        assignments = [m.assignment() for m in members]
        assert not (assignments[0] & assignments[1]) and len(assignments[0] | assignments[1]) == 4
    finally:
        for m in members:
            await m.stop()
    assert seen[0] | seen[1] == {f"m{i}" for i in range(40)}

    # the commits went through TLS too: a plain reader of the group's offsets sees them all
    reader = AIOKafkaConsumer(**conn.client_kwargs(), group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        committed = [await reader.committed(TopicPartition(topic, p)) or 0 for p in range(4)]
    finally:
        await reader.stop()
    assert sum(committed) == 40
    assert tls_broker.proxy.connections >= 3


async def test_a_broker_certificate_from_another_ca_is_refused(tls_broker: TlsTansu) -> None:
    other = trustme.CA()
    other_ca = tls_broker.tmp / "other-ca.pem"
    other.cert_pem.write_to_path(str(other_ca))
    wrong = KafkaConnection(tls_broker.conn.bootstrap, security_protocol=SecurityProtocol.SSL, ca_file=str(other_ca))
    admin = make_admin(wrong, request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(admin.start(), 20)
    with contextlib.suppress(Exception):
        await admin.close()
    plain = KafkaConnection(tls_broker.conn.bootstrap)  # PLAINTEXT against the TLS port
    admin = make_admin(plain, request_timeout_ms=3000)
    with pytest.raises((KafkaConnectionError, TimeoutError)):
        await asyncio.wait_for(admin.start(), 20)
    with contextlib.suppress(Exception):
        await admin.close()


async def test_idempotence_detected_on_the_embedded_broker(tls_broker: TlsTansu) -> None:
    """Tansu lists InitProducerId but answers it with an error: auto resolves to off, on refuses."""
    assert await broker_grants_producer_ids(tls_broker.conn) is False
    assert await resolve_idempotence(tls_broker.conn, IdempotenceMode.auto) is False
    assert await resolve_idempotence(tls_broker.conn, IdempotenceMode.off) is False
    with pytest.raises(IdempotenceUnavailable, match="KAFKA_IDEMPOTENCE=on"):
        await resolve_idempotence(tls_broker.conn, IdempotenceMode.on)


class _Settings(ServiceSettings):
    service_name = "tlsprobe"


@pytest.mark.parametrize(("mode", "started"), [("auto", True), ("off", True), ("on", False)])
async def test_the_runtime_resolves_the_mode_logs_and_exports_it(
    tls_broker: TlsTansu, monkeypatch: pytest.MonkeyPatch, mode: str, started: bool
) -> None:
    """A service's producer over TLS on Tansu: auto and off start a non-idempotent producer, on
    refuses (no producer, /healthz fails); the gauge says 0 for the mode either way."""
    for k, v in {**tls_broker.env, "DEV_MODE": "true", "KAFKA_IDEMPOTENCE": mode}.items():
        monkeypatch.setenv(k, v)
    settings = _Settings()
    runtime = Runtime(settings, ServiceDefinition(name="tlsprobe"), cast(Any, None), cast(Any, None))
    try:
        await asyncio.wait_for(runtime._start_producer(), 30)
        assert runtime.producer_ready is started and (runtime.producer is not None) is started
        assert ("producer" in runtime.failed_tasks) is not started
        if runtime.producer is not None:
            assert runtime.producer._txn_manager is None  # not idempotent
        gauge = REGISTRY.get_sample_value("advocacy_kafka_producer_idempotent", {"service": "tlsprobe", "mode": mode})
        assert gauge == 0
    finally:
        if runtime.producer is not None:
            await runtime.producer.stop()
