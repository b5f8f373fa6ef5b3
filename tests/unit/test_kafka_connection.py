"""Kafka client configuration (advocacy_common.kafka_connection): what each protocol and SASL mechanism
hands aiokafka, and the combinations refused at start with one line.

The embedded broker cannot run SASL (docs/kafka.md), so the SCRAM and PLAIN cases are checked here, on the
keyword arguments and on aiokafka's own clients built from them (which validate their arguments).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from advocacy_common import topics
from advocacy_common.kafka import (
    IdempotenceUnavailable,
    choose_idempotence,
    make_admin,
    make_consumer,
    make_producer,
    new_topic,
)
from advocacy_common.kafka_connection import IdempotenceMode, KafkaConnection, SaslMechanism, SecurityProtocol
from advocacy_common.settings import ServiceSettings, settings_error_line


class _Settings(ServiceSettings):
    service_name = "kafkatest"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    client = ca.issue_cert("advocacy-sharing")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "client.pem", "key": tmp_path / "client.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    client.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> _Settings:
    for name in list(os.environ):
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DEV_MODE", "true")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return _Settings()


def error_line(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ValidationError) as e:
        settings(monkeypatch, **env)
    return settings_error_line(_Settings, e.value)


def test_plaintext_is_the_default_and_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = settings(monkeypatch).kafka.client_kwargs()
    assert kwargs == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", list(SaslMechanism))
def test_sasl_ssl_each_mechanism(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, str], mechanism: SaslMechanism
) -> None:
    s = settings(
        monkeypatch,
        KAFKA_BOOTSTRAP_SERVERS="b1:9096,b2:9096",
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM=str(mechanism),
        KAFKA_SASL_USERNAME="sharing",
        KAFKA_SASL_PASSWORD="s3cret-password",
        KAFKA_SSL_CAFILE=pki["ca"],
    )
    kwargs = s.kafka.client_kwargs()
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "bootstrap_servers": "b1:9096,b2:9096",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": str(mechanism),
        "sasl_plain_username": "sharing",
        "sasl_plain_password": "s3cret-password",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    # the secret is not in the settings' or the connection's repr (logs)
    assert "s3cret" not in repr(s) and "s3cret" not in repr(s.kafka)
    # aiokafka accepts the arguments for every client we build (they are built inside a loop)
    asyncio.run(_clients_use(s.kafka, mechanism))


async def _clients_use(conn: KafkaConnection, mechanism: SaslMechanism) -> None:
    producer = make_producer(conn)
    consumer = make_consumer(conn, "g", ["t"])
    admin = make_admin(conn)
    for client in (producer.client, consumer._client, admin._client):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == str(mechanism)
        assert client._sasl_plain_username == "sharing"
        assert client._ssl_context is not None
    assert isinstance(producer, AIOKafkaProducer) and isinstance(consumer, AIOKafkaConsumer)
    assert isinstance(admin, AIOKafkaAdminClient)


def test_sasl_plaintext_scram(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="p",
    )
    kwargs = s.kafka.client_kwargs()
    assert "ssl_context" not in kwargs
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"


def test_mutual_tls_loads_the_client_certificate(monkeypatch: pytest.MonkeyPatch, pki: dict[str, str]) -> None:
    s = settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=pki["ca"],
        KAFKA_SSL_CERTFILE=pki["cert"],
        KAFKA_SSL_KEYFILE=pki["key"],
    )
    kwargs = s.kafka.client_kwargs()
    assert kwargs["security_protocol"] == "SSL" and "sasl_mechanism" not in kwargs
    assert kwargs["ssl_context"].get_ca_certs()  # the CA file was loaded


def test_tls_without_a_ca_file_uses_the_system_store(monkeypatch: pytest.MonkeyPatch) -> None:
    context = settings(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL").kafka.client_kwargs()["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM: must be set"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "KAFKA_SASL_USERNAME": "u",
            },
            "KAFKA_SASL_PASSWORD: must be set",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "PLAIN over SASL_PLAINTEXT",
        ),
        ({"KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_USERNAME: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        ({"KAFKA_SSL_CAFILE": "/etc/ca.pem"}, "KAFKA_SSL_CAFILE: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "no readable file"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": __file__}, "a client certificate needs both"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_REPLICATION_FACTOR": "0"}, "KAFKA_REPLICATION_FACTOR"),
        ({"KAFKA_MIN_INSYNC_REPLICAS": "0"}, "KAFKA_MIN_INSYNC_REPLICAS"),
        ({"KAFKA_IDEMPOTENCE": "maybe"}, "KAFKA_IDEMPOTENCE"),
    ],
)
def test_bad_combinations_fail_at_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    line = error_line(monkeypatch, **env)
    assert line.startswith("kafkatest: cannot start: ") and "\n" not in line
    assert expected in line


def test_replication_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    default = new_topic("t", 6, settings(monkeypatch).kafka)
    assert default.replication_factor == -1 and default.topic_configs == {}
    s = settings(monkeypatch, KAFKA_REPLICATION_FACTOR="3", KAFKA_MIN_INSYNC_REPLICAS="2")
    three = new_topic("t", 6, s.kafka)
    assert (three.replication_factor, three.topic_configs) == (3, {"min.insync.replicas": "2"})
    assert new_topic("t", 6, KafkaConnection("h:1")).replication_factor == -1  # a bare address: broker default
    feed = new_topic(topics.partner_feed("acme"), 3, s.kafka)  # a per-tenant feed: the same settings
    assert feed.replication_factor == 3
    assert feed.topic_configs == {**topics.PARTNER_FEEDS.configs(), "min.insync.replicas": "2"}


@pytest.mark.parametrize(
    ("mode", "granted", "idempotent"),
    [("auto", True, True), ("auto", False, False), ("on", True, True), ("off", True, False), ("off", False, False)],
)
def test_the_idempotence_rule(mode: str, granted: bool, idempotent: bool) -> None:
    assert choose_idempotence(IdempotenceMode(mode), granted=granted) is idempotent


def test_idempotence_on_without_producer_ids_refuses() -> None:
    with pytest.raises(IdempotenceUnavailable, match="KAFKA_IDEMPOTENCE=on"):
        choose_idempotence(IdempotenceMode.on, granted=False)


def test_idempotence_modes_and_the_old_boolean(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(monkeypatch).kafka_idempotence == "auto"
    assert settings(monkeypatch, KAFKA_ENABLE_IDEMPOTENCE="true").kafka_idempotence == "on"
    assert settings(monkeypatch, KAFKA_ENABLE_IDEMPOTENCE="false").kafka_idempotence == "off"
    both = settings(monkeypatch, KAFKA_ENABLE_IDEMPOTENCE="false", KAFKA_IDEMPOTENCE="auto")
    assert both.kafka_idempotence == "auto"  # the new name wins


def test_security_protocol_flags() -> None:
    assert [p for p in SecurityProtocol if p.uses_tls] == [SecurityProtocol.SSL, SecurityProtocol.SASL_SSL]
    assert [p for p in SecurityProtocol if p.uses_sasl] == [SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL]
