"""Settings shared by every service, read from the environment (pydantic-settings).

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix`` (``SHARING_``...).
Infrastructure settings also accept the unprefixed name (``DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``...) so one environment can configure a single service; the
prefixed name wins when both are set.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from advocacy_common.kafka_connection import IdempotenceMode, KafkaConnection, SaslMechanism, SecurityProtocol
from advocacy_common.signing_keys import env_name, refuse_weak

if TYPE_CHECKING:
    from advocacy_common.auth.claims import IssuerConfig

# Infrastructure settings that may be given without the service prefix.
SHARED_NAMES = (
    "database_url",
    "kafka_bootstrap_servers",
    "kafka_enable_idempotence",
    "kafka_topic_partitions",
    "kafka_session_timeout_ms",
    "kafka_topic_watch_seconds",
    "kafka_idempotence",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "kafka_ssl_key_password",
    "kafka_replication_factor",
    "kafka_min_insync_replicas",
    "jwt_jwks_path",
    "jwt_jwks_url",
    "jwt_issuer",
    "jwt_audience",
    "jwt_jwks_refetch_seconds",
    "auth_issuers",
    "dev_mode",
    "log_level",
    "log_json",
    "trusted_proxies",
    "cors_origins",
    "otel_exporter_otlp_endpoint",
    "tracing_sample_ratio",
)

# How long a service (and the console) keeps an idle HTTP connection open for its next request
# (uvicorn's ``timeout_keep_alive``; its default is 5 s). It stays above every proxy's upstream idle
# timeout (60 s: Envoy Gateway's BackendTrafficPolicy ``connectionIdleTimeout`` in deploy/k8s,
# ingress-nginx's ``upstream-keepalive-timeout`` default), so the proxy, never the service, closes
# an idle connection: a proxy that reuses a connection the service is closing gets a reset, which it
# answers 502/503 and does not retry for a POST. docs/operations.md, "Keep-alive".
HTTP_KEEP_ALIVE_SECONDS = 75

DEV_ISSUER = "advocacy-dev"
DEV_AUDIENCE = "advocacy"


class Role(StrEnum):
    """What a process runs: HTTP only, consumers/relay/schedulers only, or both (dev default)."""

    api = "api"
    worker = "worker"
    all = "all"

    @property
    def serves_http(self) -> bool:
        return self in (Role.api, Role.all)

    @property
    def runs_workers(self) -> bool:
        return self in (Role.worker, Role.all)


class _UnprefixedSource(PydanticBaseSettingsSource):
    """Reads the shared infrastructure names without the service prefix (lowest env priority)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = os.environ.get(field_name.upper())
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SHARED_NAMES:
            if name not in self.settings_cls.model_fields:
                continue
            value = os.environ.get(name.upper())
            if value is not None:
                field = self.settings_cls.model_fields[name]
                out[name] = self.prepare_field_value(name, field, value, self._is_complex(field))
        return out

    def _is_complex(self, field: FieldInfo) -> bool:
        return field.annotation in (list[str], list[dict[str, Any]])


class ServiceSettings(BaseSettings):
    """Every service's settings. Subclasses set ``service_name`` and ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000

    role: Role = Role.all
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str = ""
    db_pool_size: int = 10

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # How every Kafka client connects (advocacy_common.kafka_connection, docs/kafka.md): TLS with
    # the system trust store unless a CA file is named; SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512.
    kafka_security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # Topics the services create: -1 is the broker's default.replication.factor (and its own
    # min.insync.replicas when unset), so a 3-broker cluster gets 3 replicas without a setting here.
    kafka_replication_factor: int = Field(default=-1, ge=-1)
    kafka_min_insync_replicas: int | None = Field(default=None, ge=1)
    # Idempotent producer: auto = wherever the broker grants a producer id (probed at start; the
    # embedded Tansu does not), on = refuse to produce without it, off. The old boolean
    # KAFKA_ENABLE_IDEMPOTENCE, when set, still means on/off.
    kafka_idempotence: IdempotenceMode = IdempotenceMode.auto
    kafka_enable_idempotence: bool | None = None
    kafka_topic_partitions: int = 6
    kafka_send_timeout_seconds: float = 10.0
    # How long the group waits for a silent consumer before rebalancing its partitions away.
    kafka_session_timeout_ms: int = 10000
    # How often a worker checks that its topics exist (and whether the broker lost its log).
    kafka_topic_watch_seconds: float = Field(default=3.0, gt=0)

    jwt_jwks_path: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str = DEV_ISSUER
    jwt_audience: str = DEV_AUDIENCE
    jwt_leeway_seconds: int = 60
    # At most one JWKS refetch per this many seconds (an unknown kid triggers one; start-up counts).
    jwt_jwks_refetch_seconds: float = Field(default=30.0, gt=0)
    # More trusted issuers, each with its keys, audience and claim mapping (advocacy_common.auth.claims,
    # docs/identity.md): a JSON list of objects, checked at start. The JWT_* issuer above, when its keys
    # are set, stays trusted with our own claim names.
    auth_issuers: list[dict[str, Any]] = Field(default_factory=list)
    _trusted_issuers: tuple[IssuerConfig, ...] = PrivateAttr(default=())

    dev_mode: bool = False
    # Tests only (refused outside dev mode): "now" for the code that reads this service's clock comes
    # from this file (advocacy_common.testclock), so an end-to-end test moves time across processes
    # (a digest at 9 o'clock) instead of waiting for it. Unset or no file: the real time.
    clock_file: str | None = Field(None, max_length=4096)
    log_level: str = "INFO"
    log_json: bool = True
    # Networks whose X-Forwarded-For is believed. Dev trusts loopback.
    trusted_proxies: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)

    # Tracing (advocacy_common.tracing): off unless an OTLP/HTTP endpoint is named (the standard
    # variable, e.g. http://jaeger:4318); the fraction of new traces kept. 1 %: a kept /r/ trace costs
    # ~150 µs of CPU (span, export), so 10 % added 19 µs to a 99 µs redirect (bench/RESULTS.md); at
    # 3,000 clicks a second a replica still keeps 30 traces a second. A trace keeps its parent's decision.
    otel_exporter_otlp_endpoint: str | None = None
    tracing_sample_ratio: float = Field(default=0.01, ge=0, le=1)

    # The outbox relay looks for unpublished rows this often, and at once when a request that wrote
    # some commits: rows a consumer batch wrote wait up to this (stage ``relay`` of
    # docs/latency-budget.md). Each look is one indexed query.
    outbox_poll_seconds: float = 0.05
    outbox_retention_days: int = 7
    consumer_batch_max: int = 1000
    graceful_shutdown_seconds: int = 20
    # Request bodies over this are answered 413 before they are read (advocacy_common.bodylimit).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A background task that raises is restarted (0.5 s, doubling to 30 s); one that dies this many
    # times within this window makes /healthz fail, so the orchestrator replaces the pod.
    task_crash_limit: int = Field(default=3, ge=1)
    task_crash_window_seconds: float = Field(default=300.0, gt=0)
    # Checks too heavy for the event loop (the policy matcher) run in a process pool
    # (advocacy_common.offload): this many worker processes (each ~30-60 MB), at most
    # offload_max_pending calls in flight; one more waits offload_wait_seconds, then gets 429.
    offload_workers: int = Field(default=1, ge=1, le=8)
    offload_max_pending: int = Field(default=64, ge=1)
    offload_wait_seconds: float = Field(default=2.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _UnprefixedSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _defaults_and_guards(self) -> ServiceSettings:
        if not self.port:
            self.port = self.default_port
        if self.kafka_replication_factor == 0:
            raise ValueError("KAFKA_REPLICATION_FACTOR: 0 replicas; -1 (the broker's default) or at least 1")
        problems = self.kafka.problems()
        if problems:
            raise ValueError("; ".join(problems))
        if "kafka_idempotence" not in self.model_fields_set and self.kafka_enable_idempotence is not None:
            self.kafka_idempotence = IdempotenceMode.on if self.kafka_enable_idempotence else IdempotenceMode.off
        if not self.database_url:
            if not self.dev_mode:
                raise ValueError(f"{self.service_name}: DATABASE_URL must be set outside dev mode")
            self.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5433/advocacy_{self.service_name}"
        if self.dev_mode and not self.trusted_proxies:
            self.trusted_proxies = ["127.0.0.0/8", "::1/128"]
        if self.auth_issuers:
            # Imported here: the auth package imports this module (its dev keys use DEV_ISSUER).
            from advocacy_common.auth.claims import parse_issuers

            self._trusted_issuers = parse_issuers(self.auth_issuers)
        default_issuer = bool(self.jwt_jwks_path or self.jwt_jwks_url)
        if default_issuer and self.jwt_issuer in {c.issuer for c in self._trusted_issuers}:
            raise ValueError(f"{self.service_name}: AUTH_ISSUERS lists JWT_ISSUER again ({self.jwt_issuer})")
        if self.clock_file and not self.dev_mode:
            raise ValueError(f"{self.service_name}: CLOCK_FILE is for tests; it is refused outside dev mode")
        if not self.dev_mode:
            if not (default_issuer or self._trusted_issuers):
                raise ValueError(f"{self.service_name}: JWT_JWKS_URL (or JWT_JWKS_PATH, or AUTH_ISSUERS) must be set")
            if default_issuer and self.jwt_issuer == DEV_ISSUER:
                raise ValueError(f"{self.service_name}: JWT_ISSUER is the dev issuer outside dev mode")
            if any(c.issuer == DEV_ISSUER for c in self._trusted_issuers):
                raise ValueError(f"{self.service_name}: AUTH_ISSUERS lists the dev issuer outside dev mode")
            # Every field marked SigningKey: set, private, long enough (advocacy_common.signing_keys).
            refuse_weak(self)
        return self

    @property
    def trusted_issuers(self) -> tuple[IssuerConfig, ...]:
        """The ``AUTH_ISSUERS`` entries, checked and completed from their presets."""
        return self._trusted_issuers

    @property
    def kafka(self) -> KafkaConnection:
        """How this process's Kafka clients connect (every client takes this, never the address alone)."""
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            ca_file=self.kafka_ssl_cafile,
            cert_file=self.kafka_ssl_certfile,
            key_file=self.kafka_ssl_keyfile,
            key_password=self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None,
            replication_factor=self.kafka_replication_factor,
            min_insync_replicas=self.kafka_min_insync_replicas,
        )

    @classmethod
    def event_source(cls) -> str:
        """The CloudEvents ``source`` of everything this service publishes (each service's
        ``settings.SOURCE``, the one place its code takes it from)."""
        return f"/advocacy/{cls.service_name}"

    @property
    def source(self) -> str:
        return self.event_source()


def settings_error_line(settings_class: type[ServiceSettings], error: ValidationError) -> str:
    """``error`` as one line naming each offending environment variable: what a process that cannot
    start prints instead of a traceback (advocacy_common.entrypoint)."""
    parts = []
    for e in error.errors(include_url=False):
        message = (
            str(e.get("msg", "invalid")).removeprefix("Value error, ").removeprefix(f"{settings_class.service_name}: ")
        )
        loc = e.get("loc") or ()
        where = env_name(settings_class, str(loc[0])) if loc else ""
        parts.append(f"{where}: {message}" if where else message)
    return f"{settings_class.service_name}: cannot start: " + "; ".join(parts)
