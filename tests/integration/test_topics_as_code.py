"""The topics the services create carry the policy advocacy_common.topics declares (issue 14), on the
real embedded broker: retention and cleanup per topic, min.insync.replicas and the replica count
from the settings (-1: the broker's default, one replica on Tansu), and a tenant id no Kafka name
could hold still gets a feed that takes records."""

from __future__ import annotations

from typing import Any

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from advocacy_common import topics
from advocacy_common.kafka import ensure_topics, make_admin, make_consumer, make_producer
from advocacy_common.kafka_connection import KafkaConnection
from advocacy_dev.devstack.broker import TansuBroker


async def _topic_configs(conn: KafkaConnection, names: list[str]) -> dict[str, dict[str, str]]:
    admin = make_admin(conn)
    await admin.start()
    try:
        answers: list[Any] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    out: dict[str, dict[str, str]] = {}
    for answer in answers:
        for _code, _msg, _type, name, entries in answer.resources:
            out[name] = {e[0]: e[1] for e in entries}
    for t in described:
        out[t["topic"]]["replicas"] = str({len(p["replicas"]) for p in t["partitions"]})
    return out


async def test_created_topics_carry_the_declared_policy_and_the_replication_settings(
    fresh_broker: TansuBroker,
) -> None:
    conn = KafkaConnection(fresh_broker.bootstrap, replication_factor=-1, min_insync_replicas=1)
    wanted = [topics.CLICKS, topics.dead_letter("metrics"), topics.partner_feed("Acme.EU")]
    await ensure_topics(conn, wanted, 2)
    got = await _topic_configs(conn, wanted)
    for t in wanted:
        declared = topics.policy(t)
        assert declared is not None
        assert got[t] == {**declared.configs(), "min.insync.replicas": "1", "replicas": "{1}"}, t
    assert got[topics.dead_letter("metrics")]["retention.ms"] == str(30 * 24 * 3600 * 1000)


async def test_a_tenant_id_with_any_characters_gets_a_working_feed(fresh_broker: TansuBroker) -> None:
    tenant = "Acme Corp/EU_1"
    feed = topics.partner_feed(tenant)
    assert feed == "advocacy.partner._41cme_20_43orp_2f_45_55_5f1"
    await ensure_topics(fresh_broker.bootstrap, [feed], 1)
    producer = make_producer(fresh_broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(feed, b"{}", key=b"k")
    finally:
        await producer.stop()
    consumer = make_consumer(fresh_broker.bootstrap, topics.partner_group(tenant, "test"), [feed])
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10000)
        assert [r.value for rs in batches.values() for r in rs] == [b"{}"]
    finally:
        await consumer.stop()
