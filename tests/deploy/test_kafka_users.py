"""The Strimzi overlay's Kafka security (issue 14): TLS + SCRAM on every listener, no anonymous super
user, one KafkaUser per service whose ACLs are exactly what its code uses, no topic with one replica.

What a service "uses" is derived from its code, not from the manifests:
- its consumer groups (the service definition's consumers and late consumers): Read on each group,
  Read + Describe on each group's topics, Write + Describe on each group's dead-letter topic;
- the topics of the event types its events module declares (what its outbox publishes): Write + Describe;
- the topics every worker checks at start and after a wipe (``ALL_TOPICS``, its dead-letter topics):
  Describe (a topic a user cannot describe looks missing, and the worker would try to create it);
- the per-tenant partner feeds of a service that runs the partner forwarder: Create, Describe and Write
  on the feed prefix (the forwarder creates a tenant's topic on first use).
The topics themselves are created by the Topic Operator (topics.yaml): no service has Create on them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import ROOT, SERVICES, build, of_kind, one

Acl = tuple[str, str, str, str]  # resource type, name, pattern type, operation
KEDA_USER = "keda"


def consumer_groups(service: str) -> dict[str, tuple[str, ...]]:
    definition = importlib.import_module(f"advocacy_{service}.app").DEFINITION
    return {c.group_id: tuple(c.topics) for c in [*definition.consumers, *definition.late_consumers]}


def published_topics(service: str) -> set[str]:
    from advocacy_common.events import REGISTRY

    return {m.TOPIC for m in REGISTRY.values() if m.__module__ == f"advocacy_common.events.{service}"}


def runs_partner_forwarder(service: str) -> bool:
    package = ROOT / "services" / service / f"advocacy_{service}"
    return any("PartnerForwarder(" in p.read_text() for p in package.rglob("*.py") if "migrations" not in p.parts)


def partner_prefix() -> str:
    """What every tenant's feed starts with; it ends in the delimiter no encoded tenant id contains."""
    from advocacy_common import topics

    assert topics.partner_feed("a").startswith(topics.PARTNER_FEED_PREFIX)
    assert topics.PARTNER_FEED_PREFIX.endswith(topics.DELIMITER)
    return topics.PARTNER_FEED_PREFIX


def expected_acls(service: str) -> set[Acl]:
    from advocacy_common import topics

    groups = consumer_groups(service)
    dead_letters = {topics.dead_letter(g) for g in groups}
    acls: set[Acl] = set()
    for group, group_topics in groups.items():
        acls.add(("group", group, "literal", "Read"))
        for t in group_topics:
            acls |= {("topic", t, "literal", "Read"), ("topic", t, "literal", "Describe")}
    for t in published_topics(service) | dead_letters:
        acls |= {("topic", t, "literal", "Write"), ("topic", t, "literal", "Describe")}
    acls |= {("topic", t, "literal", "Describe") for t in [*topics.ALL_TOPICS, *dead_letters]}
    if runs_partner_forwarder(service):
        acls |= {("topic", partner_prefix(), "prefix", op) for op in ("Create", "Describe", "Write")}
    return acls


def keda_acls() -> set[Acl]:
    """KEDA reads each worker group's committed offsets and its topics' end offsets: Describe only."""
    acls: set[Acl] = set()
    for service in SERVICES:
        for group, group_topics in consumer_groups(service).items():
            acls.add(("group", group, "literal", "Describe"))
            acls |= {("topic", t, "literal", "Describe") for t in group_topics}
    return acls


def user_acls(user: dict[str, Any]) -> set[Acl]:
    out: set[Acl] = set()
    for acl in user["spec"]["authorization"]["acls"]:
        r = acl["resource"]
        out |= {(r["type"], r["name"], r.get("patternType", "literal"), op) for op in acl["operations"]}
    return out


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return build("strimzi-cnpg")


def test_no_anonymous_super_user_and_every_listener_authenticates(objects: list[dict[str, Any]]) -> None:
    kafka = one(objects, "Kafka", "advocacy")["spec"]["kafka"]
    assert "ANONYMOUS" not in kafka["authorization"].get("superUsers", [])
    assert kafka["authorization"]["type"] == "simple"
    for listener in kafka["listeners"]:
        assert listener["tls"] is True, listener["name"]
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]


def test_no_topic_with_one_replica(objects: list[dict[str, Any]]) -> None:
    config = one(objects, "Kafka", "advocacy")["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] >= 3 and config["min.insync.replicas"] >= 2
    for topic in of_kind(objects, "KafkaTopic"):
        replicas = topic["spec"]["replicas"]
        isr = int(topic["spec"].get("config", {}).get("min.insync.replicas", config["min.insync.replicas"]))
        assert replicas >= 3 and isr < replicas, topic["spec"]["topicName"]
    # topics the services create themselves (partner feeds) take the broker's defaults: no setting
    # in the overlay may pin them to one replica
    cm = one(objects, "ConfigMap", "advocacy-config")["data"]
    assert cm.get("KAFKA_REPLICATION_FACTOR", "-1") in ("-1", "3")


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_user_whose_acls_are_exactly_what_its_code_uses(
    objects: list[dict[str, Any]], service: str
) -> None:
    user = one(objects, "KafkaUser", service)
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == "advocacy"
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    got, wanted = user_acls(user), expected_acls(service)
    assert got == wanted, f"{service}: extra {sorted(got - wanted)}, missing {sorted(wanted - got)}"


def test_keda_reads_lag_with_describe_only(objects: list[dict[str, Any]]) -> None:
    assert user_acls(one(objects, "KafkaUser", KEDA_USER)) == keda_acls()
    auth = one(objects, "TriggerAuthentication", "advocacy-kafka")
    params = {p["parameter"]: p for p in auth["spec"]["secretTargetRef"]}
    assert params["password"]["name"] == KEDA_USER and params["ca"]["name"] == "advocacy-cluster-ca-cert"
    for so in of_kind(objects, "ScaledObject"):
        for trigger in so["spec"]["triggers"]:
            assert trigger["authenticationRef"]["name"] == "advocacy-kafka", so["metadata"]["name"]
            assert trigger["metadata"]["sasl"] == "scram_sha512" and trigger["metadata"]["tls"] == "enable"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_connects_as_its_own_user_over_tls(objects: list[dict[str, Any]], service: str) -> None:
    cm = one(objects, "ConfigMap", "advocacy-config")["data"]
    assert cm["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and cm["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    ca_file = Path(cm["KAFKA_SSL_CAFILE"])
    deployments = [
        d for d in of_kind(objects, "Deployment") if d["metadata"]["labels"].get("app.kubernetes.io/name") == service
    ]
    assert deployments
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in [*pod["containers"], *pod.get("initContainers", [])]:
            env = {e["name"]: e for e in c.get("env", [])}
            assert env["KAFKA_SASL_USERNAME"]["value"] == service, (d["metadata"]["name"], c["name"])
            ref = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (service, "password")  # the Secret the User Operator writes
            mount = next(m for m in c["volumeMounts"] if Path(m["mountPath"]) == ca_file.parent)
            assert volumes[mount["name"]]["secret"]["secretName"] == "advocacy-cluster-ca-cert"
