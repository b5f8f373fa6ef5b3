"""A partner's consumer of its tenant's Advocacy feed (``advocacy.partner.<tenant>``), with aiokafka.

What it shows (docs/partners.md explains each point):

- the names: the feed ``advocacy.partner.<tenant>`` and a consumer group of your own,
  ``partner.<tenant>.<name>`` (your ACL allows the prefix ``partner.<tenant>.``), where ``<tenant>``
  is the tenant id as written in Kafka names (:func:`tenant_segment`: ``acme`` stays ``acme``);
- a group of your own, so several copies of this process share the partitions and a restarted one
  resumes where the group stopped;
- at-least-once delivery handled properly: offsets are committed only after the batch's effects are
  stored, and every event is applied once by recording ``(ce_source, ce_id)`` in the same
  transaction as its effect (here a SQLite file; use your own database);
- versioned types: handle the ones you know, skip the others (and unknown fields) without failing.

Run it (Python 3.11+, ``pip install aiokafka``)::

    ADVOCACY_TENANT=acme KAFKA_BOOTSTRAP_SERVERS=kafka.advocacy.example.com:9094 \\
    KAFKA_USERNAME=partner-acme KAFKA_PASSWORD=... KAFKA_CA_FILE=ca.crt \\
    python partner_consumer.py

Against docker-compose (no TLS, no password): ``KAFKA_BOOTSTRAP_SERVERS=localhost:29092``.
The file stands alone: it imports nothing from Advocacy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger("partner_consumer")

REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_tenantid")


class BadRecord(ValueError):
    """A record that is not an Advocacy CloudEvent (log it and move on; it will not become valid)."""


@dataclass(frozen=True)
class PartnerEvent:
    id: str
    source: str
    type: str
    time: datetime
    tenant: str
    subject: str | None
    key: str | None
    data: dict[str, Any]

    @property
    def dedupe_key(self) -> tuple[str, str]:
        """Two deliveries of one event have the same (source, id)."""
        return (self.source, self.id)


def parse(headers: Iterable[tuple[str, bytes]], value: bytes | None, key: bytes | None = None) -> PartnerEvent:
    """Turn one Kafka record (CloudEvents binary mode) into a PartnerEvent, or raise BadRecord."""
    attrs: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            attrs[name] = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRecord(f"header {name} is not UTF-8") from e
    missing = [h for h in REQUIRED_HEADERS if not attrs.get(h)]
    if missing:
        raise BadRecord(f"missing header(s): {', '.join(missing)}")
    if attrs["ce_specversion"] != "1.0":
        raise BadRecord(f"unsupported CloudEvents version {attrs['ce_specversion']!r}")
    if attrs.get("content-type", "application/json") != "application/json":
        raise BadRecord(f"unexpected content-type {attrs['content-type']!r}")
    try:
        time = datetime.fromisoformat(attrs["ce_time"].replace("Z", "+00:00"))
    except ValueError as e:
        raise BadRecord(f"bad ce_time {attrs['ce_time']!r}") from e
    try:
        data = json.loads(value) if value is not None else None
    except ValueError as e:
        raise BadRecord("the value is not JSON") from e
    if not isinstance(data, dict):
        raise BadRecord("the value is not a JSON object")
    return PartnerEvent(
        id=attrs["ce_id"],
        source=attrs["ce_source"],
        type=attrs["ce_type"],
        time=time,
        tenant=attrs["ce_tenantid"],
        subject=attrs.get("ce_subject"),
        key=key.decode("utf-8") if key is not None else None,
        data=data,
    )


class Store:
    """Your side: the effects of events, and the ids already applied, in one database.

    ``apply`` runs inside the transaction ``apply_batch`` opens; a redelivered event finds its
    (source, id) already there and changes nothing.
    """

    def __init__(self, path: str = "partner.db") -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS processed (source TEXT, id TEXT, PRIMARY KEY (source, id));
            CREATE TABLE IF NOT EXISTS conversions (conversion_id TEXT PRIMARY KEY, employee_id TEXT,
                                                    kind TEXT, amount TEXT, currency TEXT, occurred_at TEXT);
            CREATE TABLE IF NOT EXISTS clicks_per_share (share_id TEXT PRIMARY KEY, clicks INTEGER NOT NULL);
            """
        )

    def apply_batch(self, events: Sequence[PartnerEvent]) -> int:
        """Apply new events in one transaction; return how many were new."""
        applied = 0
        with self.db:  # one transaction: effects and processed ids commit together
            for event in events:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO processed (source, id) VALUES (?, ?)", (event.source, event.id)
                )
                if cur.rowcount == 0:
                    continue  # seen before: at-least-once delivery, not a second effect
                self.apply(event)
                applied += 1
        return applied

    def apply(self, event: PartnerEvent) -> None:
        d = event.data
        if event.type == "io.advocacy.conversion.recorded.v1":
            value = d.get("value") or {}
            self.db.execute(
                "INSERT OR REPLACE INTO conversions VALUES (?, ?, ?, ?, ?, ?)",
                (d["conversion_id"], d["employee_id"], d["kind"], value.get("amount"), value.get("currency"),
                 d["occurred_at"]),
            )  # fmt: skip
        elif event.type == "io.advocacy.share.clicked.v1":
            self.db.execute(
                "INSERT INTO clicks_per_share VALUES (?, 1) ON CONFLICT (share_id) DO UPDATE SET clicks = clicks + 1",
                (d["share_id"],),
            )
        elif event.type == "io.advocacy.share.click_invalidated.v1":
            self.db.execute("UPDATE clicks_per_share SET clicks = clicks - 1 WHERE share_id = ?", (d["share_id"],))
        else:
            # A type this consumer does not use, or a newer one (.v2): skip it, do not fail.
            log.debug("skipping %s", event.type)

    def clicks(self, share_id: str) -> int:
        row = self.db.execute("SELECT clicks FROM clicks_per_share WHERE share_id = ?", (share_id,)).fetchone()
        return int(row[0]) if row else 0


def tenant_segment(tenant_id: str) -> str:
    """The tenant id as Advocacy writes it in topic and group names: unchanged when made only of
    ``a-z``, ``0-9`` and ``-``; otherwise each other character's UTF-8 bytes as ``_`` and two hex
    digits (``Acme`` -> ``_41cme``, ``acme.eu`` -> ``acme_2eeu``). docs/partners.md, "Names"."""
    kept = "abcdefghijklmnopqrstuvwxyz0123456789-"
    return "".join(
        c if c in kept else "".join(f"_{b:02x}" for b in c.encode("utf-8", "surrogatepass")) for c in tenant_id
    )


def consumer_config(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    """aiokafka settings from the environment: SASL/SCRAM over TLS when a username is given."""
    tenant = environ["ADVOCACY_TENANT"]
    config: dict[str, Any] = {
        "bootstrap_servers": environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:29092"),
        # Your group: partitions are shared among its members, offsets are kept per group.
        "group_id": environ.get("KAFKA_GROUP_ID", f"partner.{tenant_segment(tenant)}.example"),
        # Offsets are committed by hand, after the effects are stored (at-least-once).
        "enable_auto_commit": False,
        # A new group starts at the beginning of what the topic retains.
        "auto_offset_reset": "earliest",
        "max_poll_records": 500,
    }
    if environ.get("KAFKA_USERNAME"):
        config |= {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": environ["KAFKA_USERNAME"],
            "sasl_plain_password": environ["KAFKA_PASSWORD"],
            "ssl_context": ssl.create_default_context(cafile=environ.get("KAFKA_CA_FILE")),
        }
    return config


async def run(environ: dict[str, str] | os._Environ[str], store: Store) -> None:
    from aiokafka import AIOKafkaConsumer  # the only third-party dependency

    topic = f"advocacy.partner.{tenant_segment(environ['ADVOCACY_TENANT'])}"
    consumer = AIOKafkaConsumer(topic, **consumer_config(environ))
    await consumer.start()
    log.info("consuming %s", topic)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                continue
            events = []
            for records in batches.values():
                for record in records:
                    try:
                        events.append(parse(record.headers, record.value, record.key))
                    except BadRecord as e:
                        log.warning("skipping %s[%d]@%d: %s", record.topic, record.partition, record.offset, e)
            applied = store.apply_batch(events)
            # Only now: a crash before this line redelivers the batch, and apply_batch ignores repeats.
            await consumer.commit()
            log.info("applied %d new event(s) of %d", applied, len(events))
    finally:
        await consumer.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(os.environ, Store(os.environ.get("PARTNER_DB", "partner.db"))))
