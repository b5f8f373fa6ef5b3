"""aiokafka with the settings we need (DESIGN.md "Pitfalls": acks=all, no auto-commit, earliest)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from advocacy_common import topics
from advocacy_common.kafka_connection import IdempotenceMode, KafkaConnection, connection

log = logging.getLogger("advocacy.kafka")


def _never_auto_create_topics() -> None:
    """Metadata requests from our clients never create a topic as a side effect.

    aiokafka sends ``allow_auto_topic_creation=true`` with every metadata request (v4+) and offers
    no setting. A broker that honours it (Tansu does, with 4 partitions) then creates our topics
    with the wrong partition count, and right after a broker wipe several clients do so at once,
    racing the services' own CreateTopics. Topics are created explicitly (``ensure_topics``), as
    in production where Kafka runs with ``auto.create.topics.enable=false``.
    """
    from aiokafka.protocol import metadata

    original = metadata.MetadataRequest.__init__
    if getattr(original, "_advocacy_no_auto_create", False):
        return

    def __init__(
        self: metadata.MetadataRequest, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None
    ) -> None:
        original(self, topics, False if allow_auto_topic_creation is None else allow_auto_topic_creation)

    __init__._advocacy_no_auto_create = True  # type: ignore[attr-defined]
    metadata.MetadataRequest.__init__ = __init__


_never_auto_create_topics()


def _forget_leaders_on_disconnect(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """A producer that lost its connection sends nothing until fresh metadata names the leaders.

    aiokafka keeps the partition leaders it knew when a connection breaks and asks for new metadata
    in the background; the batches it still holds (sends that timed out on our side are not taken
    back) and new sends go out on the old view as soon as the broker answers again. A broker that
    came back empty (Tansu keeps nothing) does not refuse them: it takes produce requests for a
    topic it does not list, and when the topic is then created its log mixes the two (measured:
    records acknowledged before the creation vanish, the next sends fail with UnknownError, later
    ones land at offsets continuing the old count; issue 22 lost 807 of 4,607 clicks so). Apache
    Kafka refuses them (UNKNOWN_TOPIC_OR_PARTITION) and aiokafka waits for metadata. Forgetting
    the leaders on a broken connection gives both brokers that behaviour: what is held waits for
    a metadata answer that names the topic, and fails after ``request_timeout_ms`` if none does
    (the sender keeps it: journal cursor, unmarked outbox rows).
    """
    from aiokafka.conn import CloseReason

    client: Any = producer.client
    original = client._on_connection_closed

    def on_connection_closed(conn: Any, reason: Any) -> None:
        if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
            cluster = client.cluster
            with cluster._lock:
                cluster._partitions = {}
                cluster._broker_partitions = collections.defaultdict(set)
        original(conn, reason)

    client._on_connection_closed = on_connection_closed
    return producer


# Keys whose hash a producer remembers: an employee's events are keyed ``tenant:employee``, so this
# covers the people active in a consumer batch several times over, in ~2 MB (an LRU: a larger working
# set costs a hash per send, as before).
PARTITIONER_KEYS = 16_384


class KeyPartitioner:
    """aiokafka's default partitioner (murmur2 of the key, as the Java client: the same partition for a
    key) with each key's hash remembered. Its murmur2 is pure Python, ~40 % of the cost of making
    the event (py-spy: 4.5 % of gamification's time, one ``points.awarded`` per click, mostly for
    the few keys of the people active at the moment)."""

    def __init__(self, max_keys: int = PARTITIONER_KEYS) -> None:
        self._hash: Callable[[bytes], int] = functools.lru_cache(maxsize=max_keys)(murmur2)
        self._random = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._random(key, all_partitions, available))
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]


def make_producer(
    bootstrap: KafkaConnection | str, *, idempotence: bool = False, linger_ms: int = 5
) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        **connection(bootstrap).client_kwargs(),
        acks="all",
        enable_idempotence=idempotence,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
        client_id="advocacy",
        partitioner=KeyPartitioner(),
    )
    return _forget_leaders_on_disconnect(producer)


def make_consumer(
    bootstrap: KafkaConnection | str,
    group_id: str,
    topics: Iterable[str],
    *,
    max_poll_records: int = 1000,
    session_timeout_ms: int = 10000,
    fetch_max_wait_ms: int = 100,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        **connection(bootstrap).client_kwargs(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
        # How long the broker may hold a fetch that found nothing new (ConsumerSpec.fetch_max_wait_ms).
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(500, session_timeout_ms // 5),
        retry_backoff_ms=200,
        # A topic deleted and recreated (a wiped embedded broker, a rebuilt cluster) is only noticed
        # on a metadata refresh: the default 5 minutes left partitions unassigned that long.
        metadata_max_age_ms=5000,
        client_id=group_id,
    )


def new_topic(name: str, partitions: int, conn: KafkaConnection) -> NewTopic:
    """A topic as we create it: retention and cleanup policy as :mod:`advocacy_common.topics`
    declares them for this name; replicas and min.insync.replicas from the settings, never a fixed 1.

    -1 asks for the broker's ``default.replication.factor``. aiokafka speaks CreateTopics up to v3,
    and its NewTopic refuses -1 unless an (empty) replica assignment is given; Apache Kafka applies
    its default for -1 whatever the request version, and so does Tansu (one replica).
    """
    configs = topics.configs(name)
    if conn.min_insync_replicas:
        configs["min.insync.replicas"] = str(conn.min_insync_replicas)
    if conn.replication_factor == -1:
        return NewTopic(name, partitions, -1, replica_assignments={}, topic_configs=configs)
    return NewTopic(name, partitions, conn.replication_factor, topic_configs=configs)


def make_admin(bootstrap: KafkaConnection | str, *, request_timeout_ms: int = 10000) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection(bootstrap).client_kwargs(), request_timeout_ms=request_timeout_ms)


async def ensure_topics(
    bootstrap: KafkaConnection | str, topics: Iterable[str], partitions: int, *, timeout: float = 30.0
) -> None:
    """Create the topics that are missing. Existing topics are left alone."""
    conn = connection(bootstrap)
    admin = make_admin(conn)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        wanted = list(topics)
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                answer = await admin.create_topics([new_topic(t, partitions, conn) for t in missing])
                _raise_topic_errors(answer)
            log.info(
                "created topics",
                extra={"topics": missing, "partitions": partitions, "replication_factor": conn.replication_factor},
            )
    finally:
        await admin.close()


def _raise_topic_errors(answer: Any) -> None:
    """CreateTopics answers per topic: a refused replication factor is an error, not a success."""
    from aiokafka.errors import for_code

    for topic, code, *rest in getattr(answer, "topic_errors", []):
        if code and for_code(code) is not TopicAlreadyExistsError:
            raise for_code(code)(f"creating topic {topic}: {rest[0] if rest else ''}")


async def missing_topics(bootstrap: KafkaConnection | str, topics: Iterable[str], *, timeout: float = 5.0) -> list[str]:
    """The topics the broker does not know (a restarted embedded broker has lost them all)."""
    admin = make_admin(bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout))
    finally:
        await admin.close()
    return [t for t in topics if t not in existing]


async def broker_grants_producer_ids(bootstrap: KafkaConnection | str, *, timeout: float = 10.0) -> bool:
    """Whether the broker hands out producer ids (InitProducerId without a transactional id), which
    is what an idempotent producer needs. Probed rather than read from ApiVersions: Tansu lists
    InitProducerId among its APIs and then answers it with UNKNOWN_SERVER_ERROR (NOTES-tansu.md).
    Connection errors propagate (the caller retries); only the broker's refusal means False."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.transaction import InitProducerIdRequest

    kwargs = connection(bootstrap).client_kwargs()
    client = AIOKafkaClient(**kwargs, request_timeout_ms=int(timeout * 1000), client_id="advocacy-probe")
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        node = client.get_random_node()
        if node is None:
            raise KafkaError("no broker in the cluster metadata")
        try:
            answer = await asyncio.wait_for(client.send(node, InitProducerIdRequest(None, 60000)), timeout)
        except KafkaError as e:  # an API the broker does not speak at all
            log.info("InitProducerId refused", extra={"error": f"{type(e).__name__}: {e}"})
            return False
        return int(answer.error_code) == 0
    finally:
        await client.close()


async def resolve_idempotence(bootstrap: KafkaConnection | str, mode: IdempotenceMode) -> bool:
    """Whether the producer is idempotent: ``auto`` asks the broker; ``on`` insists (raises
    :class:`IdempotenceUnavailable` if the broker cannot); ``off`` never asks."""
    if mode is IdempotenceMode.off:
        return False
    return choose_idempotence(mode, granted=await broker_grants_producer_ids(bootstrap))


def choose_idempotence(mode: IdempotenceMode, *, granted: bool) -> bool:
    """The rule of ``KAFKA_IDEMPOTENCE`` once the broker has answered the probe (pure)."""
    if mode is IdempotenceMode.off:
        return False
    if mode is IdempotenceMode.on and not granted:
        raise IdempotenceUnavailable(
            "KAFKA_IDEMPOTENCE=on, but the broker grants no producer id (InitProducerId): no idempotent producer"
        )
    return granted


class IdempotenceUnavailable(RuntimeError):
    """KAFKA_IDEMPOTENCE=on against a broker without idempotent producers."""


async def start_with_retry(client: AIOKafkaProducer | AIOKafkaConsumer, stop: asyncio.Event, *, what: str) -> bool:
    """Start a client, retrying with backoff until it connects or ``stop`` is set."""
    delay = 0.2
    while not stop.is_set():
        try:
            await client.start()
            return True
        except (KafkaError, OSError) as e:
            log.warning(
                "broker unreachable, retrying",
                extra={"client": what, "error": f"{type(e).__name__}: {e}", "retry_in_s": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)
    return False
