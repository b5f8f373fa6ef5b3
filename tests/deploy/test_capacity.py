"""Issue 15, capacity (deploy/k8s/base/CAPACITY.md): on the rendered production overlays, the
database connections every pod may open fit each server's max_connections with headroom, and the
API autoscalers react at a CPU level that means something."""

from __future__ import annotations

import inspect
import math
import re
from collections import defaultdict
from typing import Any

import pytest

from tests.deploy.conftest import K8S, SERVICES, build, of_kind, one, settings_classes

PRODUCTION = ("prod", "strimzi-cnpg")
# Reserved on every server for what is not a service pod: superuser_reserved_connections (3),
# replication and backups (2), monitoring, an operator's psql, a hand-run migration (10).
HEADROOM = 15
# Beyond the pool and its overflow, a process may hold one dedicated connection (gamification's
# LISTEN for the live boards).
DEDICATED = 1
MAX_CONNECTIONS_ANNOTATION = "advocacy.example/postgres-max-connections"


@pytest.fixture(params=PRODUCTION)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connections_per_process(pool_size: int) -> int:
    """What the code's engine allows: the pool plus its overflow (advocacy_common.db.make_engine)."""
    from advocacy_common.db import make_engine

    engine = make_engine("postgresql+asyncpg://u:p@localhost/db", pool_size=pool_size)
    pool: Any = engine.sync_engine.pool
    return int(pool.size() + pool._max_overflow) + DEDICATED


def cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def app(deployment: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app")


def pool_size(objects: list[dict[str, Any]], svc: str, deployment: dict[str, Any]) -> int:
    name = f"{svc.upper()}_DB_POOL_SIZE"
    env = {e["name"]: e.get("value") for e in app(deployment).get("env", [])}
    if name in env:
        return int(env[name])
    config = one(objects, "ConfigMap", f"{svc}-config").get("data", {})
    if name in config:
        return int(config[name])
    return int(settings_classes()[svc].model_fields["db_pool_size"].default)


def max_pods(objects: list[dict[str, Any]], deployment: dict[str, Any]) -> int:
    """The autoscaler's maximum, plus the rollout's surge (new pods start before old ones stop)."""
    name = deployment["metadata"]["name"]
    hpa = [h for h in of_kind(objects, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == name]
    scaled = [s for s in of_kind(objects, "ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == name]
    assert len(hpa) + len(scaled) == 1, f"{name}: one autoscaler"
    most = int(hpa[0]["spec"]["maxReplicas"]) if hpa else int(scaled[0]["spec"]["maxReplicaCount"])
    surge = str(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
    extra = math.ceil(most * int(surge[:-1]) / 100) if surge.endswith("%") else int(surge)
    return most + extra


def servers(objects: list[dict[str, Any]], overlay: str) -> dict[str, tuple[str, int]]:
    """Each service's database server (its host) and that server's max_connections."""
    out = {}
    for svc in SERVICES:
        if overlay == "strimzi-cnpg":
            cluster = one(objects, "Cluster", f"{svc}-db")
            out[svc] = (f"{svc}-db", int(cluster["spec"]["postgresql"]["parameters"]["max_connections"]))
        else:
            db = one(objects, "Service", f"{svc}-db")
            annotations = db["metadata"].get("annotations", {})
            assert MAX_CONNECTIONS_ANNOTATION in annotations, f"{svc}-db: the server's max_connections is not declared"
            out[svc] = (db["spec"]["externalName"], int(annotations[MAX_CONNECTIONS_ANNOTATION]))
    return out


def _console_connections() -> int:
    from advocacy_console.sessiondb import TableBackend

    pool = int(inspect.signature(TableBackend.__init__).parameters["pool_size"].default)
    return 2 * pool  # max_overflow = pool_size


# What one console process may open on its database (advocacy_console.sessiondb.TableBackend).
CONSOLE_CONNECTIONS = _console_connections()


def console_server(objects: list[dict[str, Any]], overlay: str) -> tuple[str, int]:
    if overlay == "strimzi-cnpg":
        cluster = one(objects, "Cluster", "console-db")
        return "console-db", int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    db = one(objects, "Service", "console-db")
    return db["spec"]["externalName"], int(db["metadata"]["annotations"][MAX_CONNECTIONS_ANNOTATION])


def console_pods(objects: list[dict[str, Any]]) -> int:
    """Its fixed replicas plus the rollout's default surge (25 %, rounded up)."""
    d = one(objects, "Deployment", "console")
    surge = str(d["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%"))
    replicas = int(d["spec"]["replicas"])
    return replicas + (math.ceil(replicas * int(surge[:-1]) / 100) if surge.endswith("%") else int(surge))


def test_connections_fit_every_database_server(overlay: str) -> None:
    objects = build(overlay)
    where = servers(objects, overlay)
    demand: dict[str, int] = defaultdict(int)
    lines = []
    for svc in SERVICES:
        for role in ("api", "worker"):
            d = one(objects, "Deployment", f"{svc}-{role}")
            pods, pool = max_pods(objects, d), pool_size(objects, svc, d)
            demand[where[svc][0]] += pods * connections_per_process(pool)
            lines.append(f"{svc}-{role}: {pods} pods x {connections_per_process(pool)} (pool {pool})")
    limits = {host: limit for host, limit in where.values()}
    # the console's sessions table (every overlay, dev too: ADR 0014)
    host, limit = console_server(objects, overlay)
    limits[host] = min(limit, limits.get(host, limit))
    pods = console_pods(objects)
    demand[host] += pods * CONSOLE_CONNECTIONS
    lines.append(f"console: {pods} pods x {CONSOLE_CONNECTIONS}")
    for host, needed in demand.items():
        assert needed <= limits[host] - HEADROOM, (
            f"{overlay}: {host} may be asked for {needed} connections, max_connections {limits[host]} "
            f"minus {HEADROOM} headroom: " + "; ".join(lines)
        )


def test_api_autoscalers_scale_at_a_real_share_of_a_pod(overlay: str) -> None:
    """The threshold is absolute CPU: above the pod's request (an idle pod does not scale out) and
    at most 80 % of its limit (one uvicorn process uses one core at most)."""
    objects = build(overlay)
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        d = one(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        resources = app(d)["resources"]
        (metric,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        target = metric["resource"]["target"]
        assert metric["resource"]["name"] == "cpu"
        if target["type"] == "Utilization":
            threshold = cpu(resources["requests"]["cpu"]) * int(target["averageUtilization"]) / 100
        else:
            threshold = cpu(target["averageValue"])
        name = hpa["metadata"]["name"]
        assert cpu(resources["requests"]["cpu"]) <= threshold <= 0.8 * cpu(resources["limits"]["cpu"]), name
        assert threshold >= 0.5 * cpu(resources["limits"]["cpu"]), f"{name}: scales at {threshold} cores"


def test_cpu_requests_are_the_ones_derived_in_capacity_md() -> None:
    """Every Deployment's CPU request and pool size is the one CAPACITY.md derives."""
    text = (K8S / "base" / "CAPACITY.md").read_text()
    rows = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| `([a-z]+-(?:api|worker))` \| (\d+m) \| (\d+) \|", text, re.M)}
    objects = build("prod")
    for svc in SERVICES:
        for role in ("api", "worker"):
            d = one(objects, "Deployment", f"{svc}-{role}")
            assert rows.get(f"{svc}-{role}") == (
                app(d)["resources"]["requests"]["cpu"],
                str(pool_size(objects, svc, d)),
            )
