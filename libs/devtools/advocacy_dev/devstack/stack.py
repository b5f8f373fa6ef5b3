"""The whole platform on one machine: what ``make run`` does, in pieces the tests reuse.

``make run`` (``advocacy dev run``) starts the embedded PostgreSQL and the Tansu broker (unless
``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` point at servers of your own), creates the four
databases, the dev signing key and the topics, migrates, and runs the four services in the
foreground with honcho (output prefixed per service). Ctrl-C stops everything it started: the
services first, then the broker, then PostgreSQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from advocacy_common.registry import DevPlace, registered, registration
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_dev.devstack.mail import MailServer, smtp_port
from advocacy_dev.devstack.net import DevStackError, ensure_port_free, kill_own_children, run_sync, tail
from advocacy_dev.devstack.postgres import EmbeddedPostgres, create_database_on, database_url_on
from advocacy_dev.devstack.processes import ServiceProcess, service_command
from advocacy_dev.devstack.signals import on_stop_signals, signals_as_interrupt

if TYPE_CHECKING:
    from advocacy_common.auth.devkeys import DevKeys
    from advocacy_common.kafka_connection import KafkaConnection

# Every installed service and its dev port, from the services' own registrations (entry points).
SERVICES: dict[str, int] = {r.name: r.dev_port for r in registered()}
DEFAULT_PG_PORT = 5433
DEFAULT_KAFKA_PORT = 9092
DEFAULT_PARTITIONS = 6
# The web console (services/console) runs beside the services: not a registered service (no events,
# only its sessions table), it calls their public APIs; they allow its origin (CORS) for the wall.
CONSOLE_PORT = 8010
TOKEN_EXAMPLE = '.venv/bin/advocacy token --tenant acme --sub alice --role employee --team sales --name "Alice A."'
SCIM_TOKEN_EXAMPLE = ".venv/bin/advocacy scim-token --tenant acme"


# -- layout and configuration ------------------------------------------------------------------------
def default_data_dir() -> Path:
    return Path(os.environ.get("ADVOCACY_DATA_DIR") or ".data").absolute()


@dataclass(frozen=True)
class DataDir:
    """Where the dev stack keeps its state (all under ``$ADVOCACY_DATA_DIR`` or ``./.data``)."""

    root: Path

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def create(self) -> None:
        for d in (self.root, self.keys, self.logs, self.spool, self.run):
            d.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class StackConfig:
    data: DataDir
    pg_port: int = DEFAULT_PG_PORT
    kafka_port: int = DEFAULT_KAFKA_PORT
    external_database_url: str | None = None
    external_bootstrap: str | None = None
    partitions: int = DEFAULT_PARTITIONS
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if environ is None else environ
        root = Path(env.get("ADVOCACY_DATA_DIR") or ".data").absolute()
        return cls(
            data=DataDir(root),
            pg_port=int(env.get("ADVOCACY_PG_PORT") or DEFAULT_PG_PORT),
            kafka_port=int(env.get("ADVOCACY_KAFKA_PORT") or DEFAULT_KAFKA_PORT),
            external_database_url=env.get("DATABASE_URL") or None,
            external_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            partitions=int(env.get("KAFKA_TOPIC_PARTITIONS") or DEFAULT_PARTITIONS),
        )


def database_name(svc: str) -> str:
    return f"advocacy_{svc}"


def service_env(
    svc: str,
    *,
    database_url: str,
    bootstrap: str,
    jwks_path: Path | str,
    data_dir: Path,
    role: str = "all",
    log_json: bool = False,
    port: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one service process (merged over ``os.environ`` by the caller).

    ``database_url`` is the URL of this service's own database (SQLAlchemy form,
    ``postgresql+asyncpg://.../advocacy_<svc>``). ``data_dir`` is the stack's data root.
    What only one service reads comes from its registration's ``dev_env`` (sharing: its click
    journal's directory and its links' public base URL).
    """
    prefix = svc.upper()
    port = port if port is not None else SERVICES[svc]
    env = {
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_PORT": str(port),
        f"{prefix}_ROLE": role,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "JWT_JWKS_PATH": str(jwks_path),
        "DEV_MODE": "true",
        "LOG_JSON": "true" if log_json else "false",
        "PYTHONUNBUFFERED": "1",
    }
    own = registration(svc).dev_env
    if own is not None:
        env.update(own(DevPlace(data_dir=Path(data_dir), port=port)))
    if extra:
        env.update(extra)
    return env


def console_origins(port: int = CONSOLE_PORT) -> list[str]:
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def console_env(
    ports: Mapping[str, int], keys_dir: Path, *, database_url: str, secret_key: str, port: int = CONSOLE_PORT
) -> dict[str, str]:
    """The console's environment in a dev stack: the services' URLs, dev login with the stack's key,
    cookies without ``Secure`` (plain HTTP on loopback), and sessions in the console's own table as
    in production (ADR 0014), sealed with the stack's own key so they survive a restart."""
    env = {
        "CONSOLE_PORT": str(port),
        "CONSOLE_DEV_MODE": "true",
        "CONSOLE_DEV_KEYS_DIR": str(keys_dir),
        "CONSOLE_COOKIE_SECURE": "false",
        "CONSOLE_DATABASE_URL": database_url,
        "CONSOLE_SECRET_KEY": secret_key,
        "PYTHONUNBUFFERED": "1",
    }
    env.update({f"CONSOLE_{svc.upper()}_URL": f"http://127.0.0.1:{p}" for svc, p in ports.items()})
    return env


# -- preparation steps (each idempotent) -------------------------------------------------------------
def ensure_keys(keys_dir: Path) -> DevKeys:
    """The dev signing key and its JWKS (created on first use, reused after)."""
    from advocacy_common.auth.devkeys import ensure_dev_keys

    keys_dir.mkdir(parents=True, exist_ok=True)
    return ensure_dev_keys(keys_dir)


def ensure_console_secret(keys_dir: Path) -> str:
    """The dev console's session key (created on first use, private, reused after): sessions sealed
    in its table open again after a restart, as with production's shared ``CONSOLE_SECRET_KEY``."""
    import secrets

    path = keys_dir / "console-secret"
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def create_service_databases(
    server_url: str, services: Iterable[str] | None = None, names: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Create each service's database on the server (``advocacy_<svc>`` unless ``names`` says
    otherwise); returns svc -> SQLAlchemy (asyncpg) URL. Idempotent."""
    urls: dict[str, str] = {}
    for svc in services if services is not None else SERVICES:
        name = (names or {}).get(svc) or database_name(svc)
        create_database_on(server_url, name)
        urls[svc] = database_url_on(server_url, name)
    return urls


def ensure_all_topics(
    bootstrap: KafkaConnection | str, partitions: int = DEFAULT_PARTITIONS, timeout: float = 60.0
) -> None:
    """Create every domain topic that is missing (a fresh Tansu has none). ``bootstrap`` may be a
    connection with TLS/SASL settings (advocacy_common.kafka_connection)."""
    from advocacy_common.kafka import ensure_topics
    from advocacy_common.topics import ALL_TOPICS

    run_sync(lambda: ensure_topics(bootstrap, list(ALL_TOPICS), partitions), timeout=timeout)


def _migrations_digest(svc: str) -> str:
    """A digest of the service's migration scripts: a new or changed revision names a new template."""
    from importlib import resources

    root = Path(str(resources.files(registration(svc).package) / "migrations"))
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def create_migrated_databases(envs: Mapping[str, Mapping[str, str]], logs_dir: Path) -> None:
    """Each service's database (``<SVC>_DATABASE_URL`` in ``envs[svc]``, not existing yet) made as a
    copy of a template database at the code's head: what :func:`migrate_all` gives on an empty
    database, in a fraction of a second instead of a migrating process per service.

    The template, ``tmpl_<svc>_<digest of the migration scripts>`` on the same server, is migrated
    once with the service's ``migrate`` command (:func:`migrate_all`) and kept: the tests start many
    private stacks on one server. It is built under a name of its own, then renamed, so no copy is
    made of a half-migrated template and of two processes building it at once one wins.
    """
    from advocacy_dev.devstack.postgres import acopy_database_on, adatabase_exists_on, arename_database_on

    targets = {svc: envs[svc][f"{svc.upper()}_DATABASE_URL"] for svc in envs}
    servers = {svc: database_url_on(url, "postgres") for svc, url in targets.items()}  # where to create them
    templates = {svc: f"tmpl_{svc}_{_migrations_digest(svc)}" for svc in targets}
    missing = [
        svc for svc in targets if not run_sync(partial(adatabase_exists_on, servers[svc], templates[svc]), timeout=60)
    ]
    if missing:
        building = {svc: f"{templates[svc]}_{os.getpid()}_{time.monotonic_ns() % 10**6}" for svc in missing}
        build_envs = {}
        for svc in missing:
            create_database_on(servers[svc], building[svc])
            build_envs[svc] = {**envs[svc], f"{svc.upper()}_DATABASE_URL": database_url_on(targets[svc], building[svc])}
        migrate_all(build_envs, logs_dir)
        for svc in missing:
            run_sync(partial(arename_database_on, servers[svc], building[svc], templates[svc]), timeout=60)
    for svc, url in targets.items():
        run_sync(partial(acopy_database_on, servers[svc], urlsplit(url).path.lstrip("/"), templates[svc]), timeout=60)


def migrate_all(envs: Mapping[str, Mapping[str, str]], logs_dir: Path, timeout: float = 300.0) -> None:
    """Run ``python -m advocacy_<svc> migrate`` for every service, in parallel.

    Output goes to ``logs_dir/migrate-<svc>.log``; a failure raises with the log's tail.
    """
    logs_dir.mkdir(parents=True, exist_ok=True)
    running: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for svc, env in envs.items():
            log_path = logs_dir / f"migrate-{svc}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(
                    service_command(svc, "migrate"),
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            running.append((svc, proc, log_path))
        deadline = time.monotonic() + timeout
        failures = []
        for svc, proc, log_path in running:
            try:
                rc = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = -9
            if rc != 0:
                failures.append(f"--- {svc} (rc={rc}, {log_path}):\n{tail(log_path, 40)}")
        if failures:
            raise DevStackError("migrations failed:\n" + "\n".join(failures))
    finally:
        for _, proc, _ in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # A migration spawned just as an interrupt arrived is not in ``running``; it is our child.
        kill_own_children(lambda cmd: cmd[-1:] == ["migrate"] and any(c.startswith("advocacy_") for c in cmd))


# -- the infrastructure: PostgreSQL and Kafka, embedded unless given ---------------------------------
class Infra:
    """Starts what the configuration does not provide, and stops only what it started."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: EmbeddedPostgres | None = None
        self.broker: TansuBroker | None = None

    @property
    def server_url(self) -> str:
        if self.config.external_database_url:
            return self.config.external_database_url
        assert self.postgres is not None, "start() first"
        return self.postgres.server_url

    @property
    def bootstrap(self) -> str:
        if self.config.external_bootstrap:
            return self.config.external_bootstrap
        assert self.broker is not None, "start() first"
        return self.broker.bootstrap

    def start(self) -> None:
        data = self.config.data
        data.create()
        if not self.config.external_database_url:
            self.postgres = EmbeddedPostgres(data.postgres, self.config.pg_port, log_path=data.logs / "postgres.log")
            self.postgres.start()
        if not self.config.external_bootstrap:
            self.broker = TansuBroker(
                self.config.kafka_port, log_path=data.logs / "tansu.log", pid_file=data.run / "tansu.pid"
            )
            self.broker.start()

    def stop(self) -> None:
        errors: list[BaseException] = []
        if self.broker is not None:
            try:
                self.broker.stop()
            except Exception as e:
                errors.append(e)
        if self.postgres is not None:
            try:
                self.postgres.stop()
            except Exception as e:
                errors.append(e)
        if errors:
            raise DevStackError(f"stopping the infrastructure: {errors!r}")


# -- services as plain processes (the e2e tests, benchmarks) -------------------------------------------
class ProcessStack:
    """The four services as separate processes on given ports, on an existing PostgreSQL and broker."""

    def __init__(
        self,
        *,
        server_url: str,
        bootstrap: str,
        jwks_path: Path,
        data_dir: Path,
        ports: Mapping[str, int],
        log_json: bool = True,
        role: str = "all",
        partitions: int = DEFAULT_PARTITIONS,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        database_names: Mapping[str, str] | None = None,
    ) -> None:
        self.server_url = server_url
        self.database_names = {svc: (database_names or {}).get(svc) or database_name(svc) for svc in ports}
        self.bootstrap = bootstrap
        self.data = DataDir(Path(data_dir))
        self.partitions = partitions
        self.ports = dict(ports)
        self.envs: dict[str, dict[str, str]] = {}
        for svc, port in self.ports.items():
            self.envs[svc] = service_env(
                svc,
                database_url=database_url_on(server_url, self.database_names[svc]),
                bootstrap=bootstrap,
                jwks_path=jwks_path,
                data_dir=self.data.root,
                role=role,
                log_json=log_json,
                port=port,
                extra=(extra_env or {}).get(svc),
            )
        self.processes: dict[str, ServiceProcess] = {
            svc: ServiceProcess(svc, port, self.envs[svc], self.data.logs / f"{svc}.log")
            for svc, port in self.ports.items()
        }

    def prepare(self, *, from_template: bool = False) -> None:
        """Databases, topics, migrations (idempotent). ``from_template``: the databases, which must
        not exist yet, are copies of migrated templates (:func:`create_migrated_databases`)."""
        self.data.create()
        ensure_all_topics(self.bootstrap, self.partitions)
        if from_template:
            create_migrated_databases(self.envs, self.data.logs)
            return
        create_service_databases(self.server_url, self.ports, self.database_names)
        migrate_all(self.envs, self.data.logs)

    def start(self, timeout: float = 60.0) -> None:
        for proc in self.processes.values():
            proc.start()
        for proc in self.processes.values():
            proc.wait_ready(timeout)

    def stop(self) -> None:
        """SIGTERM every service (SIGKILL after 30 s), all at once."""
        for proc in self.processes.values():
            if proc.is_running() and proc.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            proc.terminate()

    def url(self, svc: str) -> str:
        return self.processes[svc].url

    def process(self, svc: str) -> ServiceProcess:
        return self.processes[svc]


# -- make run -----------------------------------------------------------------------------------------
def _panel(config: StackConfig, infra: Infra) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    services = Table.grid(padding=(0, 2))
    services.add_column(style="bold cyan", no_wrap=True)
    services.add_column(no_wrap=True)
    services.add_column(style="dim", no_wrap=True)
    for svc, port in config.ports.items():
        url = f"http://127.0.0.1:{port}"
        services.add_row(svc, url, f"{url}/docs")
    console_url = f"http://127.0.0.1:{CONSOLE_PORT}"
    services.add_row("console", console_url, f"{console_url}/login")

    if config.external_database_url:
        pg_line = f"{_redact(config.external_database_url)} (DATABASE_URL)"
    else:
        pg_line = f"{infra.server_url} (embedded, data in {config.data.postgres})"
    if config.external_bootstrap:
        kafka_line = f"{config.external_bootstrap} (KAFKA_BOOTSTRAP_SERVERS)"
    else:
        kafka_line = f"{infra.bootstrap} (Tansu, memory only: a restart forgets every topic)"

    def line(label: str, value: str) -> Text:
        return Text.assemble((f"{label:<10}", "bold"), value)

    body = Group(
        services,
        Text(),
        line("postgres", pg_line),
        line("kafka", kafka_line),
        line("logs", str(config.data.logs)),
        Text(),
        Text("A token (prints a JWT signed with the dev key):", style="bold"),
        Text(f"  export TOKEN=$({TOKEN_EXAMPLE})", style="green"),
        Text(f'  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{config.ports["content"]}/v1/content'),
        Text("SCIM 2.0 provisioning (point an identity provider or any SCIM client here):", style="bold"),
        Text(f"  base URL  http://127.0.0.1:{config.ports['content']}/scim/v2"),
        Text.assemble(
            "  secret    ", (f"{SCIM_TOKEN_EXAMPLE}", "green"), "  (rotates the tenant's SCIM bearer secret)"
        ),
        Text.assemble(
            ("Mail: ", "bold"),
            (".venv/bin/advocacy mail", "green"),
            f" lists the mail sent (SMTP 127.0.0.1:{smtp_port()}, kept in {config.data.root / 'mail'})",
        ),
        Text.assemble(
            ("The demo: ", "bold"), ("make demo", "green"), " (content, shares, clicks, metrics, leaderboard)"
        ),
        Text.assemble(("Stop: ", "bold"), "Ctrl-C"),
    )
    return Panel(body, title="[bold]Advocacy dev stack[/]", border_style="green", expand=False)


def _redact(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _announce_when_ready(config: StackConfig, infra: Infra, console: Any, stop: threading.Event) -> None:
    """Print the panel once every service answers /readyz (bounded), from a helper thread."""
    deadline = time.monotonic() + 120
    pending = dict(config.ports)
    with httpx.Client(timeout=1.0) as client:
        while pending and not stop.is_set() and time.monotonic() < deadline:
            for svc, port in list(pending.items()):
                try:
                    if client.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        del pending[svc]
                except httpx.HTTPError:
                    pass
            stop.wait(0.25)
    if stop.is_set():
        return
    if pending:
        console.print(f"[red]not ready after 120 s: {', '.join(pending)} (see the output above)[/]")
    console.print(_panel(config, infra))


def run(config: StackConfig | None = None) -> int:
    """``make run``: everything up, the services in the foreground until Ctrl-C. Returns the exit code."""
    from honcho.manager import Manager
    from honcho.printer import Printer
    from rich.console import Console

    console = Console(highlight=False)
    config = config or StackConfig.from_env()
    infra = Infra(config)
    try:
        for svc, port in config.ports.items():
            ensure_port_free(port, f"the {svc} service", hint="Is another `make run` still running?")
        ensure_port_free(smtp_port(), "the dev SMTP server", hint="Is another `make run` still running?")
        ensure_port_free(CONSOLE_PORT, "the web console", hint="Is another `make run` still running?")
    except DevStackError as e:
        console.print(f"[bold red]cannot start:[/] {e}")
        return 1

    announcer_stop = threading.Event()
    mail_server: MailServer | None = None
    rc = 0
    try:
        with signals_as_interrupt():
            with console.status("starting PostgreSQL and the broker..."):
                infra.start()
            # the notifications service's relay: keeps every message (`advocacy mail` reads them)
            mail_server = MailServer(config.data.root / "mail", smtp_port())
            mail_server.start()
            console.print(f"[green]postgres[/] {infra.server_url}   [green]kafka[/] {infra.bootstrap}")
            with console.status("databases, dev keys, topics, migrations..."):
                db_urls = create_service_databases(infra.server_url, config.ports)
                # the console's sessions table, as in production (it migrates it at start-up)
                console_db = create_service_databases(infra.server_url, ["console"])["console"]
                keys = ensure_keys(config.data.keys)
                ensure_all_topics(infra.bootstrap, config.partitions)
                envs = {
                    svc: service_env(
                        svc,
                        database_url=db_urls[svc],
                        bootstrap=infra.bootstrap,
                        jwks_path=keys.jwks_path,
                        data_dir=config.data.root,
                        port=port,
                    )
                    for svc, port in config.ports.items()
                }
                for env in envs.values():  # the console's wall opens gamification's stream from the browser
                    env["CORS_ORIGINS"] = json.dumps(console_origins())
                migrate_all(envs, config.data.logs)
            console.print("[green]databases migrated[/]; starting the services")

            manager = Manager(Printer(sys.stdout))
            for svc in config.ports:
                # exec: the shell honcho starts becomes the service, so SIGTERM reaches it alone and
                # honcho waits for the service itself to finish shutting down (flushing to Kafka)
                # before we stop the broker.
                cmd = "exec " + shlex.join(service_command(svc))
                manager.add_process(svc, cmd, env={**os.environ, **envs[svc]})
            console_cmd = "exec " + shlex.join([sys.executable, "-m", "advocacy_console", "serve"])
            console_vars = console_env(
                config.ports,
                config.data.keys,
                database_url=console_db,
                secret_key=ensure_console_secret(config.data.keys),
            )
            manager.add_process("console", console_cmd, env={**os.environ, **console_vars})
            announcer = threading.Thread(
                target=_announce_when_ready, args=(config, infra, console, announcer_stop), daemon=True
            )
            announcer.start()
        # Manager.loop installs its own SIGINT/SIGTERM handlers: they stop the services, then it returns.
        manager.loop()
        rc = manager.returncode or 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        rc = 130
    except DevStackError as e:
        console.print(f"[bold red]cannot start:[/] {e}")
        rc = 1
    finally:
        announcer_stop.set()
        if mail_server is not None:
            mail_server.stop()
        # while stopping, a second Ctrl-C must not leave PostgreSQL or the broker behind
        still = "[yellow]still stopping; the broker and PostgreSQL go down in a moment[/]"
        with on_stop_signals(lambda _: console.print(still)):
            ours = [name for name, started in (("the broker", infra.broker), ("PostgreSQL", infra.postgres)) if started]
            if ours:
                console.print(f"stopping {' and '.join(ours)}...")
            try:
                infra.stop()
            except DevStackError as e:
                console.print(f"[red]{e}[/]")
                rc = rc or 1
            else:
                console.print("[green]stopped[/]")
    return rc
