"""The Kubernetes manifests, checked on what `kubectl kustomize` builds for every overlay."""

from __future__ import annotations

import base64
import functools
import importlib
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from tests.deploy.conftest import K8S as K8S_DIR
from tests.deploy.conftest import (
    OVERLAYS,
    SERVICES,
    build,
    env_names,
    of_kind,
    one,
    public_routes,
    settings_classes,
)

K8S_VERSION = "1.31"
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster"}
# Not in kubernetes-validate's schemas: checked against the pinned Gateway API and Envoy Gateway CRD
# schemas by tests/deploy/test_edges.py.
GATEWAY_KINDS = {"Gateway", "HTTPRoute", "BackendTrafficPolicy", "ClientTrafficPolicy"}

# Public path prefixes and the service whose API serves them (API.md).
ROUTES = {
    "/r/": "sharing",
    **{p: "content" for p in ("/v1/content", "/v1/policy", "/v1/me", "/v1/waves", "/v1/members", "/v1/tenant", "/v1/partner",
                              "/v1/coaching", "/v1/audit/content", "/v1/data-export/content", "/v1/scim", "/scim/v2")},
    **{p: "sharing" for p in ("/v1/shares", "/v1/share-actions", "/v1/accounts", "/v1/clicks", "/v1/conversions", "/v1/conversion-secrets",
                              "/v1/partners", "/v1/links", "/v1/audit/sharing", "/v1/data-export/sharing")},
    "/v1/metrics": "metrics",
    "/v1/data-export/metrics": "metrics",
    **{p: "gamification" for p in ("/v1/leaderboard", "/v1/points", "/v1/rules", "/v1/badges", "/v1/challenges",
                                   "/v1/rewards", "/v1/redemptions", "/v1/audit/gamification",
                                   "/v1/data-export/gamification")},
    "/v1/notifications": "notifications",
    "/v1/data-export/notifications": "notifications",
}  # fmt: skip


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def config_value(objects: list[dict[str, Any]], cm: str, key: str, default: Any = None) -> Any:
    return one(objects, "ConfigMap", cm).get("data", {}).get(key, default)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def consumer_groups(service: str) -> dict[str, tuple[str, ...]]:
    """The consumer groups a service's worker runs, and their topics, from its code."""
    definition = importlib.import_module(f"advocacy_{service}.app").DEFINITION
    return {c.group_id: tuple(c.topics) for c in [*definition.consumers, *definition.late_consumers]}


@pytest.fixture
def cached_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """kubernetes_validate reads its (large) schema files on every call: read each once."""
    monkeypatch.setattr(kv_utils, "schema_contents", _schema_contents)


_schema_contents = functools.cache(kv_utils.schema_contents)


@pytest.mark.usefixtures("cached_schemas")
def test_every_overlay_builds_and_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    objects = build(overlay)
    assert objects
    validated = 0
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            validated += 1
        except SchemaNotFoundError:
            assert obj["kind"] in CUSTOM_KINDS | GATEWAY_KINDS, f"no schema for {obj['apiVersion']} {obj['kind']}"
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{overlay}: {obj['kind']} {obj['metadata']['name']}: {e}")
    assert validated >= 50


def test_workloads_are_probed_limited_and_non_root(overlay: str) -> None:
    objects = build(overlay)
    workloads = of_kind(objects, "Deployment")
    # an api and a worker per service, and the web console in every overlay (components/console, ADR 0014)
    assert len(workloads) == 2 * len(SERVICES) + 1
    for w in workloads:
        name = w["metadata"]["name"]
        spec, c = pod_spec(w), container(w)
        pod_sc, sc = spec["securityContext"], c["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert spec["automountServiceAccountToken"] is False, name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name}: {kind}"
        # The read-only root needs a writable /tmp.
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]), name
        assert w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "advocacy", name


def test_api_and_worker_deployments_per_service(overlay: str) -> None:
    objects = build(overlay)
    for svc in SERVICES:
        port = settings_classes()[svc].default_port
        grace = int(config_value(objects, f"{svc}-config", f"{svc.upper()}_GRACEFUL_SHUTDOWN_SECONDS", 20))
        for role in ("api", "worker"):
            d = one(objects, "Deployment", f"{svc}-{role}")
            c = container(d)
            assert c["command"] == [f"advocacy-{svc}", "serve"]
            assert {"name": f"{svc.upper()}_ROLE", "value": role} in c["env"]
            assert c["ports"] == [{"name": "http", "containerPort": port}]
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
            own = {e["name"]: e.get("value") for e in c.get("env", [])}.get(f"{svc.upper()}_GRACEFUL_SHUTDOWN_SECONDS")
            drain = int(own) if own is not None else grace
            # the app's shutdown, then the producer's flush (10 s), must end before the kill
            assert pod_spec(d)["terminationGracePeriodSeconds"] > drain + pre_stop + 10, f"{svc}-{role}"
            refs = {(k, v["name"]) for e in c["envFrom"] for k, v in e.items()}
            assert ("configMapRef", "advocacy-config") in refs and ("configMapRef", f"{svc}-config") in refs
            assert any(k == "secretRef" and n.startswith(f"{svc}-secrets") for k, n in refs)
            assert "replicas" not in d["spec"], f"{svc}-{role}: the autoscaler owns the replica count"
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        # migrations: an init container of each Deployment (tests/deploy/test_rollout.py)


def test_config_and_secret_names_are_ones_the_settings_read(overlay: str) -> None:
    objects = build(overlay)
    shared = set(one(objects, "ConfigMap", "advocacy-config")["data"])
    assert shared <= env_names("content") & env_names("metrics"), "advocacy-config holds shared names only"
    assert "DEV_MODE" not in shared
    assert config_value(objects, "advocacy-config", "KAFKA_IDEMPOTENCE") == "on"
    for svc in SERVICES:
        own = set(one(objects, "ConfigMap", f"{svc}-config")["data"])
        assert own <= env_names(svc), f"{svc}-config: {sorted(own - env_names(svc))}"
        for s in of_kind(objects, "Secret"):
            if s["metadata"]["name"].startswith(f"{svc}-secrets"):
                assert set(s["data"]) <= env_names(svc)


def test_no_overlay_ships_a_published_signing_key(overlay: str) -> None:
    """Signing keys are the operator's (prod, strimzi-cnpg: a Secret they create) or generated by
    `make secrets` into a git-ignored file (dev): never a value from the repository (issue 13)."""
    from advocacy_common.signing_keys import env_name, marked_fields, weakness

    objects = build(overlay)
    keys = {env_name(cls, f) for cls in settings_classes().values() for f in marked_fields(cls)}
    for s in of_kind(objects, "Secret"):
        for k, v in s.get("data", {}).items():
            if k in keys:
                assert weakness(base64.b64decode(v).decode()) is None, f"{overlay}: {s['metadata']['name']} {k}"
    kustomizations = [p.read_text() for p in (K8S_DIR / "overlays" / overlay).rglob("*.yaml")]
    kustomizations += [p.read_text() for p in (K8S_DIR / "base").rglob("*.yaml")]
    for text in kustomizations:
        assert not any(f"{k}=" in text or f"{k}:" in text for k in keys), f"{overlay}: a literal signing key"


def test_settings_validate_from_the_dev_overlays_environment(clean_env: pytest.MonkeyPatch) -> None:
    """ConfigMaps + Secret + the container's env build each service's settings outside dev mode."""
    objects = build("dev")
    for svc, cls in settings_classes().items():
        for role in ("api", "worker"):
            c = container(one(objects, "Deployment", f"{svc}-{role}"))
            env: dict[str, str] = {}
            for source in c["envFrom"]:
                if "configMapRef" in source:
                    env |= one(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
                else:
                    secret = one(objects, "Secret", source["secretRef"]["name"])
                    env |= {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            env |= {e["name"]: e["value"] for e in c.get("env", [])}
            with pytest.MonkeyPatch.context() as mp:
                for k, v in env.items():
                    mp.setenv(k, v)
                settings = cls()
            assert settings.role.value == role and settings.dev_mode is False
            assert settings.kafka_idempotence == "on"
            assert settings.database_url.endswith(f"@{svc}-db:5432/advocacy_{svc}")


def test_services_and_pod_disruption_budgets(overlay: str) -> None:
    objects = build(overlay)
    for svc in SERVICES:
        service = one(objects, "Service", f"{svc}-api")
        api = one(objects, "Deployment", f"{svc}-api")
        assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
        for role in ("api", "worker"):
            pdb = one(objects, "PodDisruptionBudget", f"{svc}-{role}")
            deployment = one(objects, "Deployment", f"{svc}-{role}")
            assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
            assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") is not None
            # crash-looping pods must not block node drains (issue 15)
            assert pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow"


def test_hpa_scales_the_api_on_cpu(overlay: str) -> None:
    objects = build(overlay)
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    assert {h["metadata"]["name"] for h in hpas} == {f"{s}-api" for s in SERVICES}
    for h in hpas:
        assert h["apiVersion"] == "autoscaling/v2"
        target = h["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] == h["metadata"]["name"]
        assert [m["resource"]["name"] for m in h["spec"]["metrics"]] == ["cpu"]
        assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]


def test_keda_scales_workers_on_lag_capped_at_the_partitions(overlay: str) -> None:
    objects = build(overlay)
    partitions = int(config_value(objects, "advocacy-config", "KAFKA_TOPIC_PARTITIONS"))
    bootstrap = config_value(objects, "advocacy-config", "KAFKA_BOOTSTRAP_SERVERS")
    scaled = of_kind(objects, "ScaledObject")
    assert {s["metadata"]["name"] for s in scaled} == {f"{s}-worker" for s in SERVICES}
    for svc in SERVICES:
        so = one(objects, "ScaledObject", f"{svc}-worker")
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        assert so["spec"]["scaleTargetRef"]["name"] == f"{svc}-worker"
        assert so["spec"]["minReplicaCount"] >= 1, "never 0: the worker runs the outbox relay"
        assert so["spec"]["maxReplicaCount"] <= partitions, f"{svc}: more replicas than partitions"
        triggers = so["spec"]["triggers"]
        assert all(t["type"] == "kafka" for t in triggers)
        groups = consumer_groups(svc)
        assert {t["metadata"]["consumerGroup"] for t in triggers} == set(groups), f"{svc}: one trigger per group"
        for t in triggers:
            meta = t["metadata"]
            assert meta["bootstrapServers"] == bootstrap, "ScaledObjects follow advocacy-config"
            assert "." in bootstrap.split(",")[0].split(":")[0], "KEDA resolves it from another namespace: FQDN"
            if "topic" in meta:
                assert meta["topic"] in groups[meta["consumerGroup"]]
            assert int(meta["lagThreshold"]) > 0


def test_the_edge_routes_public_paths_to_each_service(overlay: str) -> None:
    objects = build(overlay)
    routed = public_routes(objects)
    for backend in routed.values():
        one(objects, "Service", backend)
    assert routed["/r"] == "sharing-api"
    for prefix, svc in ROUTES.items():
        assert routed.get(prefix.rstrip("/")) == f"{svc}-api", prefix
    assert not any(p in routed for p in ("/healthz", "/readyz", "/metrics", "/"))
    # one edge per overlay: the base's Gateway, or ingress-nginx's Ingresses (the optional one)
    assert bool(of_kind(objects, "HTTPRoute")) != bool(of_kind(objects, "Ingress")), overlay
    if overlay != "dev":
        assert all(i["spec"].get("tls") for i in of_kind(objects, "Ingress"))
        listeners = [li for g in of_kind(objects, "Gateway") for li in g["spec"]["listeners"]]
        assert all(li["protocol"] == "HTTPS" and li["tls"]["certificateRefs"] for li in listeners)


def _policies(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return of_kind(objects, "NetworkPolicy")


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def test_network_policies_deny_by_default_and_open_only_what_is_needed(overlay: str) -> None:
    objects = build(overlay)
    policies = _policies(objects)
    deny = one(objects, "NetworkPolicy", "advocacy-default-deny")
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    dns = one(objects, "NetworkPolicy", "advocacy-allow-dns")
    assert {p["port"] for r in dns["spec"]["egress"] for p in r["ports"]} == {53}
    for w in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        labels = w["spec"]["template"]["metadata"]["labels"]
        applying = [p for p in policies if _selects(p, labels)]
        assert deny in applying, w["metadata"]["name"]
        ingress_from = [peer for p in applying for r in p["spec"].get("ingress", []) for peer in r.get("from", [])]
        namespaces = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in ingress_from
            if "namespaceSelector" in peer
        }
        # the only peer in the namespace itself: the web console, calling the APIs (ADR 0014)
        local = [peer["podSelector"]["matchLabels"] for peer in ingress_from if "namespaceSelector" not in peer]
        component = labels["app.kubernetes.io/component"]
        assert local == ([{"app.kubernetes.io/name": "console"}] if component == "api" else [])
        if labels["app.kubernetes.io/name"] == "console":
            edge = "ingress-nginx" if of_kind(objects, "Ingress") else "envoy-gateway-system"
            assert namespaces == {edge}, w["metadata"]["name"]
            ports = {p["port"] for pol in applying for r in pol["spec"].get("egress", []) for p in r.get("ports", [])}
            # the APIs, its sessions database and the IdP over HTTPS: never Kafka
            assert ports == {53, 8001, 8002, 8003, 8004, 5432, 443}, f"console: egress ports {ports}"
            continue
        if component == "api":
            edge = "ingress-nginx" if of_kind(objects, "Ingress") else "envoy-gateway-system"
            assert namespaces == {edge, "monitoring"}, w["metadata"]["name"]
        elif component == "worker":
            assert namespaces == {"monitoring"}, w["metadata"]["name"]
        else:
            assert namespaces == set(), w["metadata"]["name"]
        ports = {p["port"] for pol in applying for r in pol["spec"].get("egress", []) for p in r.get("ports", [])}
        # APIs fetch the IdP's JWKS; content's worker POSTs partner webhooks, notifications' Slack and Teams.
        https = component == "api" or (
            labels["app.kubernetes.io/name"] in ("content", "notifications") and component == "worker"
        )
        kafka_port = int(config_value(objects, "advocacy-config", "KAFKA_BOOTSTRAP_SERVERS").rsplit(":", 1)[1])
        allowed = {53, kafka_port, 5432} | ({443} if https else set())
        if overlay == "dev" and component == "api":
            allowed |= {80, 8080}  # the in-cluster dev IdP's JWKS over HTTP (test_edges.py)
        if labels["app.kubernetes.io/name"] == "notifications" and component == "worker":
            allowed |= {25, 465, 587}  # the SMTP relay the mail is handed to
        assert ports == allowed, f"{w['metadata']['name']}: egress ports {ports}"


def test_operator_managed_pods_are_outside_the_advocacy_policies() -> None:
    """Kafka and PostgreSQL pods in the namespace must not be caught by the default deny."""
    for obj in build("strimzi-cnpg"):
        if obj["kind"] in CUSTOM_KINDS - {"ScaledObject"}:
            assert "app.kubernetes.io/part-of" not in obj["metadata"].get("labels", {}), obj["metadata"]["name"]


def test_strimzi_kafka_kraft_and_topics_cover_every_topic_and_group() -> None:
    from advocacy_common import topics

    objects = build("strimzi-cnpg")
    kafka = one(objects, "Kafka", "advocacy")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    internal = next(lst for lst in kafka["spec"]["kafka"]["listeners"] if lst["name"] == "internal")
    bootstrap = config_value(objects, "advocacy-config", "KAFKA_BOOTSTRAP_SERVERS")
    assert bootstrap == f"advocacy-kafka-bootstrap.advocacy.svc.cluster.local:{internal['port']}"
    pools = of_kind(objects, "KafkaNodePool")
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == "advocacy" for p in pools)
    assert {r for p in pools for r in p["spec"]["roles"]} == {"controller", "broker"}
    assert sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"]) % 2 == 1
    kafka_topics = {t["spec"]["topicName"]: t for t in of_kind(objects, "KafkaTopic")}
    groups = {g: ts for svc in SERVICES for g, ts in consumer_groups(svc).items()}
    for name in [*topics.ALL_TOPICS, *(topics.dead_letter(g) for g in groups)]:
        assert name in kafka_topics, f"no KafkaTopic for {name}"
        assert kafka_topics[name]["metadata"]["labels"]["strimzi.io/cluster"] == "advocacy"
        assert kafka_topics[name]["spec"]["replicas"] >= 3
    for svc in SERVICES:
        so = one(objects, "ScaledObject", f"{svc}-worker")
        for group, group_topics in consumer_groups(svc).items():
            fewest = min(kafka_topics[t]["spec"]["partitions"] for t in group_topics)
            assert so["spec"]["maxReplicaCount"] <= fewest, f"{svc}/{group}: replicas beyond partitions"


def test_cloudnativepg_cluster_per_service_and_egress_to_it_alone() -> None:
    objects = build("strimzi-cnpg")
    clusters = {c["metadata"]["name"]: c for c in of_kind(objects, "Cluster")}
    # and the console's, for its sessions (tests/deploy/test_console_deploy.py)
    assert set(clusters) == {f"{s}-db" for s in SERVICES} | {"console-db"}
    for svc in SERVICES:
        cluster = clusters[f"{svc}-db"]
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        assert cluster["spec"]["bootstrap"]["initdb"]["database"] == f"advocacy_{svc}"
        assert cluster["spec"]["instances"] >= 2
        for w in [one(objects, "Deployment", f"{svc}-api"), one(objects, "Deployment", f"{svc}-worker")]:
            env = {e["name"]: e for e in container(w).get("env", [])}
            ref = env[f"{svc.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": f"{svc}-db-app", "key": "uri"}
        egress = one(objects, "NetworkPolicy", f"{svc}-egress")["spec"]["egress"]
        db_rules = [r for r in egress if any(p["port"] == 5432 for p in r["ports"])]
        assert [peer["podSelector"]["matchLabels"] for r in db_rules for peer in r["to"]] == [
            {"cnpg.io/cluster": f"{svc}-db"}
        ]
    assert not any(s["spec"].get("type") == "ExternalName" for s in of_kind(objects, "Service"))


def test_images_are_tagged_per_overlay(overlay: str) -> None:
    objects = build(overlay)
    for w in of_kind(objects, "Deployment") + of_kind(objects, "Job"):
        image = container(w)["image"]
        name, _, tag = image.rpartition(":")
        assert name.rsplit("/", 1)[-1] == f"advocacy-{w['metadata']['labels']['app.kubernetes.io/name']}"
        assert tag and tag != "latest", image


def test_a_stopping_redirect_pod_drains_its_click_journal_first(overlay: str) -> None:
    """ADR 0010: the journal is an emptyDir, so a sharing-api pod that goes (rollout, drain, scale
    down) sends every journaled click before it does, retrying through a broker outage of up to five
    minutes; and the journal's own size limit purges sent segments before the volume fills."""
    from advocacy_sharing.settings import SharingSettings

    objects = build(overlay)
    d = one(objects, "Deployment", "sharing-api")
    c = container(d)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    drain = int(env["SHARING_GRACEFUL_SHUTDOWN_SECONDS"])
    assert drain >= 300
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod_spec(d)["terminationGracePeriodSeconds"] >= pre_stop + drain + 10 + 10  # flush + margin
    volume = next(v for v in pod_spec(d)["volumes"] if v["name"] == "spool")
    size = volume["emptyDir"]["sizeLimit"]
    assert size.endswith("Gi")
    max_bytes = int(config_value(objects, "sharing-config", "SHARING_JOURNAL_MAX_BYTES", 0)) or int(
        SharingSettings.model_fields["journal_max_bytes"].default
    )
    assert max_bytes <= int(size[:-2]) * 2**30 * 0.8, "purging by size must start before the volume fills"
