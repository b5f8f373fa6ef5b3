"""The embedded stack itself: PostgreSQL, the Tansu broker, service processes, the stack helpers."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from advocacy_dev.devstack.broker import ExternalBroker, TansuBroker
from advocacy_dev.devstack.net import PortInUseError, free_port
from advocacy_dev.devstack.postgres import (
    EmbeddedPostgres,
    ExternalPostgres,
    acreate_database_on,
    database_url_on,
    plain_url,
)
from advocacy_dev.devstack.processes import ServiceProcess, ServiceStartError
from advocacy_dev.devstack.stack import create_service_databases, ensure_all_topics, service_env

# -- PostgreSQL ----------------------------------------------------------------------------------------


async def test_postgres_answers_select_1(pg: EmbeddedPostgres | ExternalPostgres) -> None:
    conn = await asyncpg.connect(plain_url(pg.database_url("postgres")))
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_create_database_is_idempotent(
    pg: EmbeddedPostgres | ExternalPostgres, unique_id: Callable[..., str]
) -> None:
    name = unique_id("db").replace("-", "_")
    url = pg.create_database(name)
    assert pg.create_database(name) == url
    assert url == database_url_on(pg.server_url, name)
    assert url.startswith("postgresql+asyncpg://") and url.endswith(f"/{name}")
    assert await acreate_database_on(pg.server_url, name) is False  # exists: nothing to do
    conn = await asyncpg.connect(plain_url(url))
    try:
        assert await conn.fetchval("select current_database()") == name
    finally:
        await conn.close()


async def test_create_database_refuses_odd_names(pg: EmbeddedPostgres | ExternalPostgres) -> None:
    with pytest.raises(ValueError, match="refusing"):
        await acreate_database_on(pg.server_url, 'x"; drop database postgres; --')


def test_database_urls_keep_credentials_and_query() -> None:
    server = "postgresql+psycopg://app:secret@db.example:5432/postgres?sslmode=require"
    assert database_url_on(server, "advocacy_sharing") == (
        "postgresql+asyncpg://app:secret@db.example:5432/advocacy_sharing?sslmode=require"
    )
    assert database_url_on(server, "x", driver=None).startswith("postgresql://app:secret@")
    assert plain_url(server) == "postgresql://app:secret@db.example:5432/postgres?sslmode=require"


def test_embedded_postgres_keeps_data_across_restarts_and_names_a_busy_port(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "data", free_port(), log_path=tmp_path / "pg.log")
    try:
        server.start()
        server.create_database("survivor")
        server.stop()
        assert not server.is_running()
        server.start()  # no initdb this time: the cluster is reused
        assert server.is_running()
        assert server.create_database("survivor").endswith("/survivor")

        # A second server on the same port fails with a message that names the port.
        other = EmbeddedPostgres(tmp_path / "other", server.port)
        with pytest.raises(PortInUseError, match=str(server.port)):
            other.start()
        assert not other.is_running()
    finally:
        server.stop()
    assert not server.is_running()


def test_a_new_folder_at_an_old_path_starts_an_empty_cluster(tmp_path: Path) -> None:
    """A deleted data folder made again at the same path (a test run's temporary folder, `make clean`
    then `make run`) starts empty: as root the cluster lives elsewhere, named by the path, and an old
    one used to come back with its data (a stale table broke a compose test)."""
    import shutil

    async def databases(server: EmbeddedPostgres) -> set[str]:
        conn = await asyncpg.connect(plain_url(server.database_url("postgres")))
        try:
            return {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
        finally:
            await conn.close()

    folder = tmp_path / "data"
    server = EmbeddedPostgres(folder, free_port())
    try:
        server.start()
        server.create_database("old_one")
        assert "old_one" in asyncio.run(databases(server))
        server.stop()
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder)
        again = EmbeddedPostgres(folder, server.port)
        again.start()
        try:
            assert "old_one" not in asyncio.run(databases(again))
        finally:
            again.stop()
    finally:
        server.stop()


# -- Kafka (Tansu) -----------------------------------------------------------------------------------


async def test_broker_round_trip_with_key_and_headers(
    broker: TansuBroker | ExternalBroker, unique_id: Callable[..., str]
) -> None:
    from advocacy_common.kafka import ensure_topics

    topic = unique_id("test.devstack")
    await ensure_topics(broker.bootstrap, [topic], 3)
    await ensure_topics(broker.bootstrap, [topic], 3)  # creating an existing topic is no error

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        headers = [("ce_type", b"io.advocacy.test.v1"), ("ce_tenantid", b"t-1")]
        await asyncio.wait_for(producer.send_and_wait(topic, b'{"n": 1}', key=b"t-1:alice", headers=headers), 10)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=unique_id("g"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert record.key == b"t-1:alice"
    assert record.value == b'{"n": 1}'
    assert dict(record.headers) == {"ce_type": b"io.advocacy.test.v1", "ce_tenantid": b"t-1"}


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_broker_restart_loses_every_topic(fresh_broker: TansuBroker) -> None:
    """Known Tansu behaviour (memory storage): a restart comes back empty. The services must
    recreate their topics and re-publish (DESIGN.md: the broker is not the system of record)."""
    from advocacy_common.kafka import ensure_topics, missing_topics

    await ensure_topics(fresh_broker.bootstrap, ["advocacy.test.lost"], 1)
    assert "advocacy.test.lost" in await _topics(fresh_broker.bootstrap)

    await asyncio.to_thread(fresh_broker.restart)
    assert "advocacy.test.lost" not in await _topics(fresh_broker.bootstrap)
    assert await missing_topics(fresh_broker.bootstrap, ["advocacy.test.lost"]) == ["advocacy.test.lost"]

    await asyncio.to_thread(fresh_broker.kill)
    assert not fresh_broker.is_running()
    await asyncio.to_thread(fresh_broker.start)  # the same port again, at once
    assert await _topics(fresh_broker.bootstrap) == set()


def test_broker_names_a_busy_port(fresh_broker: TansuBroker) -> None:
    with pytest.raises(PortInUseError, match=str(fresh_broker.port)):
        TansuBroker(fresh_broker.port).start()


# -- service processes -------------------------------------------------------------------------------

# A stand-in service: /readyz answers 200 once "ready" (after READY_AFTER requests); exits on SIGTERM.
FAKE_SERVICE = textwrap.dedent(
    """
    import http.server, os, signal, sys
    port = int(os.environ["FAKE_PORT"])
    after = int(os.environ.get("READY_AFTER", "0"))
    seen = 0
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            global seen
            seen += 1
            ok = self.path == "/readyz" and seen > after
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(os.environ.get("GREETING", "hi").encode())
        def log_message(self, *a):
            pass
    server = http.server.HTTPServer(("127.0.0.1", port), H)
    def stop(*_):
        print("got SIGTERM, bye", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    print(f"fake service on {port}", flush=True)
    server.serve_forever()
    """
)


def test_service_process_lifecycle(tmp_path: Path) -> None:
    port = free_port()
    proc = ServiceProcess(
        "fake",
        port,
        {"FAKE_PORT": str(port), "READY_AFTER": "3"},
        tmp_path / "logs" / "fake.log",
        command=[sys.executable, "-c", FAKE_SERVICE],
    )
    try:
        proc.start()
        proc.wait_ready(timeout=20)  # 503 three times, then 200
        assert proc.url == f"http://127.0.0.1:{port}"
        assert proc.is_running()

        assert proc.terminate() == 0
        assert "got SIGTERM, bye" in proc.log_tail()

        proc.start()
        proc.wait_ready(timeout=20)
        first_pid = proc.pid
        proc.restart(graceful=False)  # SIGKILL, start, wait ready
        assert proc.pid != first_pid
        assert proc.is_running()

        assert proc.kill() == -9
        assert not proc.is_running()
        assert proc.log_tail().count("----- fake: start #") == 3
    finally:
        proc.kill()


def test_service_process_that_dies_reports_its_log(tmp_path: Path) -> None:
    proc = ServiceProcess(
        "broken",
        free_port(),
        {},
        tmp_path / "broken.log",
        command=[sys.executable, "-c", "import sys; print('settings: DATABASE_URL missing'); sys.exit(3)"],
    )
    try:
        proc.start()
        with pytest.raises(ServiceStartError, match=r"(?s)rc=3.*DATABASE_URL missing"):
            proc.wait_ready(timeout=20)
    finally:
        proc.kill()


def test_service_process_not_ready_in_time(tmp_path: Path) -> None:
    port = free_port()
    proc = ServiceProcess(
        "slow",
        port,
        {"FAKE_PORT": str(port), "READY_AFTER": "1000000"},
        tmp_path / "slow.log",
        command=[sys.executable, "-c", FAKE_SERVICE],
    )
    try:
        proc.start()
        with pytest.raises(ServiceStartError, match=r"(?s)not ready.*503.*fake service on"):
            proc.wait_ready(timeout=2)
    finally:
        proc.kill()


# -- the stack helpers -------------------------------------------------------------------------------


def test_service_env(tmp_path: Path) -> None:
    env = service_env(
        "sharing",
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5433/advocacy_sharing",
        bootstrap="127.0.0.1:9092",
        jwks_path=tmp_path / "keys" / "jwks.json",
        data_dir=tmp_path,
    )
    assert env["SHARING_DATABASE_URL"].endswith("/advocacy_sharing")
    assert env["SHARING_PORT"] == "8002"
    assert env["SHARING_ROLE"] == "all"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert env["JWT_JWKS_PATH"] == str(tmp_path / "keys" / "jwks.json")
    assert env["DEV_MODE"] == "true"
    assert env["LOG_JSON"] == "false"
    assert env["SHARING_SPOOL_DIR"] == str(tmp_path / "spool")
    assert env["SHARING_PUBLIC_BASE_URL"] == "http://127.0.0.1:8002"

    metrics = service_env(
        "metrics",
        database_url="postgresql+asyncpg://x/advocacy_metrics",
        bootstrap="b:1",
        jwks_path="/k.json",
        data_dir=tmp_path,
        role="worker",
        log_json=True,
        port=18003,
    )
    assert metrics["METRICS_PORT"] == "18003"
    assert metrics["METRICS_ROLE"] == "worker"
    assert metrics["LOG_JSON"] == "true"
    assert not any(k.startswith("SHARING_") for k in metrics)


async def test_stack_databases_and_topics(
    pg: EmbeddedPostgres | ExternalPostgres, fresh_broker: TansuBroker, unique_id: Callable[..., str]
) -> None:
    from advocacy_common.topics import ALL_TOPICS

    names = {svc: f"{unique_id('s').replace('-', '_')}_{svc}" for svc in ("content", "sharing")}
    urls = await asyncio.to_thread(create_service_databases, pg.server_url, ["content", "sharing"], names)
    again = await asyncio.to_thread(create_service_databases, pg.server_url, ["content", "sharing"], names)
    assert urls == again
    assert urls["sharing"].endswith(f"/{names['sharing']}")

    await asyncio.to_thread(ensure_all_topics, fresh_broker.bootstrap, 2)
    assert set(ALL_TOPICS) <= await _topics(fresh_broker.bootstrap)
