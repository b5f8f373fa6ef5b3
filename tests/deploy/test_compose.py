"""docker-compose.yml, read as data (no Docker engine here): order, health, and settings it really sets."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, SERVICES, env_names, settings_classes

COMPOSE = ROOT / "docker-compose.yml"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def interpolate(value: str, environ: dict[str, str] | None = None) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} with an empty (or given) environment."""
    environ = environ or {}

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if op in (":-", "-"):
            return environ.get(name) or arg
        if op in (":?", "?"):
            if name not in environ:
                raise AssertionError(f"{name} is required: {arg}")
            return environ[name]
        return environ.get(name, "")

    return re.sub(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}", sub, value).replace("$$", "$")


def app_service(name: str, spec: dict[str, Any]) -> str | None:
    """Which Advocacy service a Compose service runs (by its image's SERVICE build arg), if any."""
    svc = (spec.get("build") or {}).get("args", {}).get("SERVICE")
    return str(svc) if svc else None


def is_one_shot(spec: dict[str, Any]) -> bool:
    return spec.get("restart") == "no"


def test_every_service_has_an_image_or_build_and_a_health_check_or_is_one_shot() -> None:
    for name, spec in services().items():
        assert spec.get("image") or spec.get("build"), f"{name}: no image and no build"
        if not is_one_shot(spec):
            test = (spec.get("healthcheck") or {}).get("test")
            assert test, f"{name}: long-running without a health check"


def test_depends_on_always_names_a_condition() -> None:
    svcs = services()
    for name, spec in svcs.items():
        deps = spec.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must use the long form with conditions"
        for dep, how in deps.items():
            assert dep in svcs, f"{name} depends on unknown {dep}"
            assert how.get("condition") in CONDITIONS, f"{name} -> {dep}: {how}"
            if how["condition"] == "service_healthy":
                assert svcs[dep].get("healthcheck"), f"{name} waits for {dep} to be healthy; it has no health check"
            if how["condition"] == "service_completed_successfully":
                assert is_one_shot(svcs[dep]), f"{name} waits for {dep} to complete; it is not a one-shot"


def test_start_up_order_migrate_then_api_and_worker() -> None:
    svcs = services()
    for svc in SERVICES:
        migrate, api, worker = svcs[f"{svc}-migrate"], svcs[f"{svc}-api"], svcs[f"{svc}-worker"]
        assert migrate["command"] == [f"advocacy-{svc}", "migrate"]
        assert is_one_shot(migrate)
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        for role, spec in (("api", api), ("worker", worker)):
            assert spec["command"] == [f"advocacy-{svc}", "serve"]
            assert spec["environment"][f"{svc.upper()}_ROLE"] == role
            assert spec["depends_on"][f"{svc}-migrate"]["condition"] == "service_completed_successfully"
            assert spec["depends_on"]["idp"]["condition"] == "service_completed_successfully"
        # A worker needs the broker to be ready; an API does not (a broker outage must not take it down).
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "kafka" not in api["depends_on"]


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    svcs = services()
    kafka = svcs["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert not any("zookeeper" in n.lower() or "ZOOKEEPER" in str(s) for n, s in svcs.items())


def test_environment_names_are_ones_the_settings_read() -> None:
    for name, spec in services().items():
        svc = app_service(name, spec)
        if svc is None:
            continue
        unknown = set(spec.get("environment", {})) - env_names(svc)
        assert not unknown, f"{name}: variables no settings class reads: {sorted(unknown)}"


def made_secrets() -> dict[str, str]:
    """What `make secrets` writes to .env: a private value for every variable the Makefile lists."""
    makefile = (ROOT / "Makefile").read_text()
    names = re.search(r"^SIGNING_KEYS := (.+)$", makefile, re.M)
    assert names, "Makefile: SIGNING_KEYS"
    return {n: secrets.token_urlsafe(32) for n in names.group(1).split()}


def test_no_signing_key_has_a_default_outside_dev_mode() -> None:
    """Compose runs outside dev mode: every signing key a service reads must come from .env, so
    nobody runs with a value published in this file (issue 13)."""
    from advocacy_common.signing_keys import env_name, marked_fields

    required = made_secrets()
    for name, spec in services().items():
        svc = app_service(name, spec)
        if svc is None or name == "idp":
            continue
        cls = settings_classes()[svc]
        for field, mark in marked_fields(cls).items():
            var = env_name(cls, field)
            if var not in spec["environment"]:
                assert mark.generated_when_unset, f"{name}: {var} is not set and has no generated fallback"
                continue
            assert var in required, f"{name}: {var} is not written by make secrets"
            with pytest.raises(AssertionError, match=f"{var} is required"):
                interpolate(str(spec["environment"][var]))


def test_production_settings_no_dev_mode_idempotent_producers() -> None:
    for name, spec in services().items():
        svc = app_service(name, spec)
        if svc is None or name == "idp":
            continue
        env = {k: interpolate(str(v), made_secrets()) for k, v in spec["environment"].items()}
        assert env.get("DEV_MODE", "false").lower() in ("false", "0"), f"{name}: DEV_MODE"
        assert env["KAFKA_IDEMPOTENCE"] == "on", f"{name}: idempotent producers, or no start"
        assert env["JWT_JWKS_PATH"] or env.get("JWT_JWKS_URL")


def test_settings_validate_from_the_compose_environment(clean_env: pytest.MonkeyPatch) -> None:
    """Each container's environment builds its settings outside dev mode (no missing secret or URL)."""
    classes = settings_classes()
    for name, spec in services().items():
        svc = app_service(name, spec)
        if svc is None or name == "idp":
            continue
        with pytest.MonkeyPatch.context() as mp:
            for key, value in spec["environment"].items():
                mp.setenv(key, interpolate(str(value), made_secrets()))
            settings = classes[svc]()
        assert settings.dev_mode is False
        assert settings.kafka_idempotence == "on"
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert settings.database_url.endswith(f"@postgres:5432/advocacy_{svc}")


INIT_SCRIPT = ROOT / "deploy/compose/postgres-init.sh"
DATABASES = ("content", "sharing", "metrics", "gamification", "console", "notifications")


def test_one_database_per_service_created_by_the_init_script_on_every_up() -> None:
    script = INIT_SCRIPT.read_text()
    # the console keeps its sessions in a database of its own (ADR 0014), created before the last
    # one (notifications), which the healthcheck waits for
    assert f"for svc in {' '.join(DATABASES)}" in script
    svcs = services()
    assert any("postgres-init.sh:/docker-entrypoint-initdb.d/" in v for v in svcs["postgres"]["volumes"])
    # an existing volume gets a database added since (the init directory runs on an empty one only):
    # the same script, run by a one-shot before the console and every migrate
    again = svcs["postgres-databases"]
    assert is_one_shot(again) and again["command"] == ["sh", "/opt/postgres-init.sh"]
    assert "./deploy/compose/postgres-init.sh:/opt/postgres-init.sh:ro" in again["volumes"]
    assert (
        again["environment"]["PGHOST"] == "postgres"
        and again["depends_on"]["postgres"]["condition"] == "service_healthy"
    )
    for name in ["console", *(f"{svc}-migrate" for svc in SERVICES)]:
        assert svcs[name]["depends_on"]["postgres-databases"]["condition"] == "service_completed_successfully", name


def test_the_init_script_fills_in_what_an_older_volume_lacks(tmp_path: Path) -> None:
    """Run as on an empty volume, then again on one made before the console's database (and its
    role) existed: the second run adds them and keeps everything else (it was a `role already
    exists` error)."""
    from advocacy_dev.devstack.net import free_port
    from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, SUPERUSER, EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path / "data", free_port(), settings=FAST_UNSAFE_SETTINGS)
    server.start()
    try:
        env = {**os.environ, "PGHOST": server.host, "PGPORT": str(server.port), "POSTGRES_USER": SUPERUSER}
        env["ADVOCACY_DB_PASSWORD"] = "it's-a-pw"  # quoted, not spliced

        def run(*args: str) -> str:
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, done.stderr
            return done.stdout

        def psql(sql: str) -> str:
            return run("psql", "-v", "ON_ERROR_STOP=1", "-U", SUPERUSER, "-d", "postgres", "-Atc", sql)

        run("sh", str(INIT_SCRIPT))
        psql("DROP DATABASE advocacy_console")
        psql("DROP ROLE advocacy_console")
        psql("CREATE TABLE kept (id int)")  # what was there stays
        run("sh", str(INIT_SCRIPT))
        owners = psql(
            "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'advocacy%'"
        )
        assert set(owners.split()) == {f"advocacy_{d}=advocacy_{d}" for d in DATABASES}
        assert psql("SELECT count(*) FROM kept") == "0\n"
        assert psql("SELECT has_database_privilege('public', 'advocacy_console', 'CONNECT')") == "f\n"
    finally:
        server.stop()


def test_graceful_stop_outlasts_the_apps_shutdown() -> None:
    default = settings_classes()["content"].model_fields["graceful_shutdown_seconds"].default
    for name, spec in services().items():
        if app_service(name, spec) and not is_one_shot(spec):
            grace = int(str(spec["stop_grace_period"]).rstrip("s"))
            assert grace > default, f"{name}: stop_grace_period {grace}s <= app shutdown {default}s"


def test_bind_mounts_exist() -> None:
    for name, spec in services().items():
        for volume in spec.get("volumes", []):
            if isinstance(volume, str) and volume.startswith("./"):
                assert (ROOT / volume.split(":")[0]).exists(), f"{name}: {volume}"


def test_prometheus_scrapes_every_service_process() -> None:
    svcs = services()
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for svc, cls in settings_classes().items():
        for role in ("api", "worker"):
            assert f"{svc}-{role}:{cls.default_port}" in targets
            assert f"{svc}-{role}" in svcs
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    grafana = services()["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/advocacy.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (ROOT / "deploy/grafana/dashboards/advocacy.json").exists()
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_every_service_process_exports_traces_to_the_trace_viewer() -> None:
    svcs = services()
    for name, spec in svcs.items():
        if app_service(name, spec) is None or is_one_shot(spec):
            continue
        endpoint = interpolate(str(spec["environment"].get("OTEL_EXPORTER_OTLP_ENDPOINT", "")))
        m = re.fullmatch(r"http://([a-z-]+):4318", endpoint)
        assert m, f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT is {endpoint!r}, not an OTLP/HTTP endpoint on the network"
        assert svcs[m.group(1)]["image"].startswith("jaegertracing/jaeger:"), f"{name}: traces go to {m.group(1)}"
        assert 0 < float(interpolate(str(spec["environment"]["TRACING_SAMPLE_RATIO"]))) <= 1
