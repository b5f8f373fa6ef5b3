"""Topics as code (issue 14): the Strimzi overlay's KafkaTopics are exactly the topics the code
declares, with the retention and cleanup policy advocacy_common.topics gives them (the same configs
the services create a missing topic with), and no partner ACL prefix can match another tenant."""

from __future__ import annotations

from typing import Any

import pytest

from advocacy_common import topics
from tests.deploy.conftest import OVERLAYS, SERVICES, build, of_kind, one
from tests.deploy.test_kafka_users import consumer_groups, user_acls

# What the overlay adds to the declared policy: durability on three brokers.
OVERLAY_ONLY = {"min.insync.replicas"}
EXAMPLE_TENANT = "acme"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return build("strimzi-cnpg")


def code_topics() -> set[str]:
    """The domain topics and every consumer group's dead-letter topic (what workers ensure at start)."""
    groups = {g for s in SERVICES for g in consumer_groups(s)}
    return {*topics.ALL_TOPICS, *(topics.dead_letter(g) for g in groups)}


def test_the_kafka_topics_are_the_ones_the_code_declares(objects: list[dict[str, Any]]) -> None:
    declared = {t["spec"]["topicName"] for t in of_kind(objects, "KafkaTopic")}
    assert declared == code_topics(), (
        f"extra {sorted(declared - code_topics())}, missing {sorted(code_topics() - declared)}"
    )


def test_each_kafka_topic_has_the_declared_retention_and_cleanup_policy(objects: list[dict[str, Any]]) -> None:
    for t in of_kind(objects, "KafkaTopic"):
        name = t["spec"]["topicName"]
        config = {k: str(v) for k, v in t["spec"].get("config", {}).items() if k not in OVERLAY_ONLY}
        assert config == topics.configs(name), name
        assert topics.configs(name), f"{name}: no policy declared in advocacy_common.topics"


def test_the_partner_example_reads_its_feed_in_groups_under_a_delimited_prefix(objects: list[dict[str, Any]]) -> None:
    """The example partner user's ACLs come from the same functions the forwarder and partners use."""
    user = one(objects, "KafkaUser", f"partner-{EXAMPLE_TENANT}")
    assert user_acls(user) == {
        ("topic", topics.partner_feed(EXAMPLE_TENANT), "literal", "Describe"),
        ("topic", topics.partner_feed(EXAMPLE_TENANT), "literal", "Read"),
        ("group", topics.partner_group_prefix(EXAMPLE_TENANT), "prefix", "Read"),
    }


def test_every_prefix_acl_ends_in_the_delimiter(objects: list[dict[str, Any]]) -> None:
    """A prefix that ends inside a tenant's segment would match other tenants (``partner-acme`` and
    ``acme-corp``): every prefix ACL of every user ends where a tenant segment cannot continue."""
    for user in of_kind(objects, "KafkaUser"):
        for kind, name, pattern, _op in user_acls(user):
            if pattern == "prefix":
                assert name.endswith(topics.DELIMITER), (user["metadata"]["name"], kind, name)


def test_the_asyncapi_channels_publish_the_declared_policy() -> None:
    """Partners and tools read retention and cleanup from the AsyncAPI document: the declared ones."""
    import yaml

    from advocacy_dev import asyncapi
    from tests.deploy.conftest import ROOT

    doc = yaml.safe_load((ROOT / asyncapi.DOC_PATH).read_text())
    seen = set()
    for channel in doc["channels"].values():
        address = channel["address"].replace("{tenant}", EXAMPLE_TENANT)
        declared = topics.policy(address)
        assert declared is not None, address
        config = channel["bindings"]["kafka"]["topicConfiguration"]
        assert config == {"cleanup.policy": [str(declared.cleanup)], "retention.ms": declared.retention_ms}, address
        seen.add(address)
    assert seen == {*topics.ALL_TOPICS, topics.partner_feed(EXAMPLE_TENANT)}


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "dev"])
def test_no_production_overlay_pins_the_services_topics_to_one_replica(overlay: str) -> None:
    """Topics the services create (partner feeds, a missing topic) take KAFKA_REPLICATION_FACTOR:
    unset or -1 is the broker's default; only the dev overlay may say 1."""
    objects = build(overlay)
    for cm in of_kind(objects, "ConfigMap"):
        data = cm.get("data") or {}
        factor = int(data.get("KAFKA_REPLICATION_FACTOR", "-1"))
        assert factor == -1 or factor >= 3, (overlay, cm["metadata"]["name"], factor)
        if "KAFKA_MIN_INSYNC_REPLICAS" in data:
            assert factor == -1 or int(data["KAFKA_MIN_INSYNC_REPLICAS"]) < factor, (overlay, cm["metadata"]["name"])
