"""Kafka topics as code: every topic's name and policy, and how tenant ids become names (docs/kafka.md).

Domain topics are internal (they mix tenants); partners get a feed of their own per tenant. This
module is the one place that says

- what each topic is called (the constants, :func:`dead_letter`, :func:`partner_feed`);
- how long it keeps records and how it cleans up (:func:`policy`): the services create topics with
  these configs (``advocacy_common.kafka.ensure_topics``), and the Strimzi ``KafkaTopic`` resources
  declare the same (``tests/deploy/test_topics_as_code.py`` compares them);
- how a tenant id becomes part of a topic or consumer-group name (:func:`tenant_segment`).

Replication is not here: it is the deployment's (``KAFKA_REPLICATION_FACTOR``, default the broker's).

Pure: the standard library only (domain modules may import it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CONTENT = "advocacy.content"
SHARES = "advocacy.shares"
CLICKS = "advocacy.clicks"
# Raw redirect hits, keyed by link, consumed only by sharing's verdict worker.
CLICKS_RAW = "advocacy.clicks.raw"
CONVERSIONS = "advocacy.conversions"
GAMIFICATION = "advocacy.gamification"
# What metrics tells others about the figures (the admins' weekly report), keyed by tenant.
METRICS = "advocacy.metrics"

ALL_TOPICS = [CONTENT, SHARES, CLICKS, CLICKS_RAW, CONVERSIONS, GAMIFICATION, METRICS]

# Ends every fixed part of a name that a tenant id follows or precedes. No encoded tenant id
# contains it (tenant_segment), so a prefix ending in it matches one tenant's names only:
# ``partner.acme.`` never matches ``partner.acme-corp.crm``.
DELIMITER = "."
# Starts an escaped byte in an encoded tenant id (``_`` and two lower-case hex digits).
ESCAPE = "_"
DEAD_LETTER_PREFIX = "advocacy.dlq."
PARTNER_FEED_PREFIX = "advocacy.partner."
PARTNER_GROUP_PREFIX = "partner."
# Kafka refuses a topic name longer than this (and the characters outside [a-zA-Z0-9._-]).
MAX_TOPIC_NAME = 249
# The longest encoded tenant id: what fits after the partner-feed prefix.
MAX_TENANT_SEGMENT = MAX_TOPIC_NAME - len(PARTNER_FEED_PREFIX)

_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_HEX = frozenset("0123456789abcdef")
_DAY_MS = 24 * 60 * 60 * 1000


class Cleanup(StrEnum):
    """Kafka's ``cleanup.policy``. Every topic here deletes by age: they carry events (facts), not a
    latest value per key, and erasure relies on old records expiring (docs/operations.md)."""

    delete = "delete"
    compact = "compact"


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    """How long a topic keeps records and how it cleans up; the same on every broker we run on."""

    retention_ms: int
    cleanup: Cleanup = Cleanup.delete

    def configs(self) -> dict[str, str]:
        """The topic configs, as CreateTopics and a Strimzi ``KafkaTopic`` spell them."""
        return {"cleanup.policy": str(self.cleanup), "retention.ms": str(self.retention_ms)}


# Events: 7 days. The broker is not the system of record: each service keeps its outbox and sharing
# its click journal for 7 days (OUTBOX_RETENTION_DAYS, SHARING_JOURNAL_RETENTION_DAYS) and can
# re-publish them, so a longer log would only keep personal data longer (erasure waits for it).
EVENTS = TopicPolicy(retention_ms=7 * _DAY_MS)
# Dead letters: 30 days, so an operator back from a holiday still finds what was refused and why.
DEAD_LETTERS = TopicPolicy(retention_ms=30 * _DAY_MS)
# A tenant's partner feed: 7 days, what docs/partners.md promises partners ("Retention").
PARTNER_FEEDS = TopicPolicy(retention_ms=7 * _DAY_MS)

_POLICIES: dict[str, TopicPolicy] = {t: EVENTS for t in ALL_TOPICS}


def policy(topic: str) -> TopicPolicy | None:
    """The declared policy of one of our topics; None for a name this module does not declare (a
    test's scratch topic), which then gets the broker's defaults."""
    if topic in _POLICIES:
        return _POLICIES[topic]
    if topic.startswith(DEAD_LETTER_PREFIX):
        return DEAD_LETTERS
    if topic.startswith(PARTNER_FEED_PREFIX):
        return PARTNER_FEEDS
    return None


def configs(topic: str) -> dict[str, str]:
    """The configs a topic is created with (empty for an undeclared one)."""
    declared = policy(topic)
    return declared.configs() if declared else {}


def dead_letter(group_id: str) -> str:
    """One dead-letter topic per consumer group, so a poisoned event names who refused it."""
    return f"{DEAD_LETTER_PREFIX}{group_id}"


def tenant_segment(tenant_id: str) -> str:
    """A tenant id as it appears in topic and consumer-group names: injective, and the identity on
    ids made only of ``[a-z0-9-]`` (so ``acme`` keeps ``advocacy.partner.acme``).

    Every other character becomes its UTF-8 bytes, each as ``_`` and two lower-case hex digits
    (``Acme`` -> ``_41cme``, ``acme.eu`` -> ``acme_2eeu``, ``a_b`` -> ``a_5fb``). The result holds
    only ``[a-z0-9_-]``: characters Kafka accepts in a topic name, never :data:`DELIMITER`, and no
    ``.`` that could collide with a ``_`` in Kafka's metric names. It is decoded by reading two hex
    digits after each ``_`` (:func:`tenant_of_segment`), so two ids never share a segment.

    Raises ValueError for an empty id, or one whose segment would not fit in a topic name
    (:data:`MAX_TENANT_SEGMENT` characters: 232 plain characters, fewer when escaped).
    """
    if not tenant_id:
        raise ValueError("an empty tenant id has no topic name")
    parts: list[str] = []
    length = 0
    for ch in tenant_id:
        # surrogatepass: a lone surrogate (JSON allows "\ud800") still encodes, distinctly
        part = ch if ch in _KEPT else "".join(f"{ESCAPE}{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        parts.append(part)
        length += len(part)
        if length > MAX_TENANT_SEGMENT:
            raise ValueError(
                f"tenant id {tenant_id[:40]!r}... is too long for a Kafka topic name "
                f"(its encoded form passes {MAX_TENANT_SEGMENT} characters)"
            )
    return "".join(parts)


def tenant_of_segment(segment: str) -> str:
    """The tenant id a segment encodes (the inverse of :func:`tenant_segment`); ValueError if it
    is not one's output."""
    out = bytearray()
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch in _KEPT:
            out += ch.encode()
            i += 1
        elif ch == ESCAPE and len(pair := segment[i + 1 : i + 3]) == 2 and set(pair) <= _HEX:
            out.append(int(pair, 16))
            i += 3
        else:
            raise ValueError(f"not a tenant segment: {segment!r} (at {i})")
    tenant = out.decode("utf-8", "surrogatepass")
    if tenant_segment(tenant) != segment:  # e.g. an escaped byte that needed none ("_61" for "a")
        raise ValueError(f"not a tenant segment: {segment!r} (not how {tenant!r} is written)")
    return tenant


def partner_feed(tenant_id: str) -> str:
    """A tenant's partner feed: ``advocacy.partner.<segment>``."""
    return f"{PARTNER_FEED_PREFIX}{tenant_segment(tenant_id)}"


def partner_group_prefix(tenant_id: str) -> str:
    """What a tenant's partners' consumer groups start with (their ACL prefix): ``partner.<segment>.``."""
    return f"{PARTNER_GROUP_PREFIX}{tenant_segment(tenant_id)}{DELIMITER}"


def partner_group(tenant_id: str, name: str) -> str:
    """A partner's consumer group of its own: ``partner.<segment>.<name>`` (e.g. ``partner.acme.crm``)."""
    if not name:
        raise ValueError("a partner's consumer group needs a name")
    return partner_group_prefix(tenant_id) + name
