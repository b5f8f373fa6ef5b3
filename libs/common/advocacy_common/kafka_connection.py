"""How every Kafka client of ours connects: address, TLS, SASL (docs/kafka.md).

One :class:`KafkaConnection` is built from the settings (``ServiceSettings.kafka``) and handed to
``advocacy_common.kafka``; :meth:`KafkaConnection.client_kwargs` is the one place that turns it
into aiokafka's keyword arguments, for the producer, the consumers and the admin client alike.
A plain string is still accepted where a connection is (``"host:9092"``: PLAINTEXT, no SASL),
which is what tests against the embedded broker pass.

Mechanisms: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (what MSK, Confluent Cloud, Aiven and Strimzi
offer for user/password). OAUTHBEARER is left out: aiokafka 0.14 only sends a token that the caller's
own ``AbstractTokenProvider`` fetches and refreshes (no OIDC client-credentials flow, no SASL
extensions from settings), so "supporting" it would mean writing and securing a token client here.
GSSAPI (Kerberos) needs the optional ``gssapi`` package and a keytab: not offered either.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def uses_sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class IdempotenceMode(StrEnum):
    """``auto``: idempotent wherever the broker grants a producer id (probed at start);
    ``on``: the producer refuses to start without it; ``off``: never asked for."""

    auto = "auto"
    on = "on"
    off = "off"


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to authenticate to them. ``problems()`` lists what cannot work."""

    bootstrap: str
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # PEM files. No CA file means the system trust store (what managed Kafka's public CAs need).
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = field(default=None, repr=False)
    # Topics we create (ensure_topics): -1 leaves the replica count to the broker's
    # default.replication.factor; None leaves min.insync.replicas to the broker's default too.
    replication_factor: int = -1
    min_insync_replicas: int | None = None

    def problems(self) -> list[str]:
        """Each combination that cannot connect, as ``SETTING: why`` (empty when usable)."""
        out: list[str] = []
        protocol = self.security_protocol
        if not self.bootstrap.strip():
            out.append("KAFKA_BOOTSTRAP_SERVERS: empty")
        if protocol.uses_sasl:
            if self.sasl_mechanism is None:
                out.append(f"KAFKA_SASL_MECHANISM: must be set with KAFKA_SECURITY_PROTOCOL={protocol}")
            if not self.username:
                out.append(f"KAFKA_SASL_USERNAME: must be set with KAFKA_SECURITY_PROTOCOL={protocol}")
            if not self.password:
                out.append(f"KAFKA_SASL_PASSWORD: must be set with KAFKA_SECURITY_PROTOCOL={protocol}")
            if protocol is SecurityProtocol.SASL_PLAINTEXT and self.sasl_mechanism is SaslMechanism.PLAIN:
                out.append("KAFKA_SASL_MECHANISM: PLAIN over SASL_PLAINTEXT sends the password in clear; use SASL_SSL")
        else:
            for name, value in (
                ("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                ("KAFKA_SASL_USERNAME", self.username),
                ("KAFKA_SASL_PASSWORD", self.password),
            ):
                if value:
                    out.append(f"{name}: set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL")
        tls_files = (
            ("KAFKA_SSL_CAFILE", self.ca_file),
            ("KAFKA_SSL_CERTFILE", self.cert_file),
            ("KAFKA_SSL_KEYFILE", self.key_file),
        )
        if not protocol.uses_tls:
            out.extend(
                f"{name}: set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS" for name, v in tls_files if v
            )
        else:
            if bool(self.cert_file) != bool(self.key_file):
                out.append("KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE: a client certificate needs both")
            out.extend(f"{name}: no readable file {v}" for name, v in tls_files if v and not _readable(v))
        return out

    def ssl_context(self) -> ssl.SSLContext:
        """Server verification on (hostname included) against ``ca_file`` or the system store."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file, self.key_password)
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """aiokafka's keyword arguments for any client (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": str(self.security_protocol),
        }
        if self.security_protocol.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.security_protocol.uses_sasl:
            kwargs["sasl_mechanism"] = str(self.sasl_mechanism)
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        return kwargs


def _readable(path: str) -> bool:
    p = Path(path)
    try:
        with p.open("rb"):
            return True
    except OSError:
        return False


def connection(bootstrap: KafkaConnection | str) -> KafkaConnection:
    """A plain ``host:port[,...]`` string is a PLAINTEXT connection."""
    return bootstrap if isinstance(bootstrap, KafkaConnection) else KafkaConnection(bootstrap)
