"""Sharing's running parts, held by the process's runtime (:attr:`Runtime.parts`), and what the process
does to them when the broker lost its log.

The broker watch: re-send the click journal when the broker lost its log (DESIGN.md).
Clicks go from the API process's journal straight to Kafka, not through an outbox, so the worker's
topic watch (``advocacy_common.topicwatch``: recreate topics, re-publish the outbox) cannot re-send
them. Two paths lead here:

- in a process that also runs the workers (role ``all``), the topic watch notices the wipe by its
  dead-letter canary and calls :func:`rewind_journal` (the definition's ``on_broker_wiped`` hook);
- an API-only process watches for missing topics itself (:func:`watch_broker`), recreates them and
  rewinds. (Split deployments run on a real Kafka cluster, which does not forget its log; a worker
  that recreated the topics first would hide the wipe from the API process.)

Consumers deduplicate by event id, so re-sending what the new broker may already hold is harmless.
A broker that does not answer at all is not "lost": the journal simply waits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from advocacy_common import topics
from advocacy_common.kafka import ensure_topics, missing_topics
from advocacy_common.runtime import Runtime
from advocacy_common.topicwatch import every
from advocacy_sharing.adapters.clickid import ClickIds
from advocacy_sharing.adapters.emitter import ClickSender
from advocacy_sharing.adapters.redirect import LinkCache, Redirector
from advocacy_sharing.adapters.spool import ClickJournal


@dataclass
class SharingParts:
    """``click_ids`` in every role; the rest only where HTTP is served (the redirect's parts)."""

    click_ids: ClickIds
    journal: ClickJournal | None = None
    sender: ClickSender | None = None
    cache: LinkCache | None = None
    redirector: Redirector | None = None


def parts_of(runtime: Runtime) -> SharingParts:
    parts = runtime.parts
    if not isinstance(parts, SharingParts):
        raise RuntimeError("sharing's parts are not set up (its on_start has not run)")
    return parts


# -- the broker watch ---------------------------------------------------------------------------------
log = logging.getLogger("advocacy.sharing.brokerwatch")


async def rewind_journal(runtime: Runtime) -> None:
    """Send the click journal again from its oldest retained segment."""
    parts = parts_of(runtime)
    if parts.journal is None:
        return
    parts.journal.rewind()
    if parts.sender is not None:
        parts.sender.wake()
    log.warning("re-sending the click journal from its oldest retained segment")


async def check_once(runtime: Runtime) -> bool:
    """True when the broker had lost our topics and the journal was rewound."""
    s = runtime.settings
    wanted = list(topics.ALL_TOPICS)
    try:
        missing = await missing_topics(s.kafka, wanted)
    except Exception:
        return False  # unreachable: nothing to decide
    if not missing:
        return False
    log.warning("the broker lost topics: recreating them", extra={"topics": missing})
    await ensure_topics(s.kafka, wanted, s.kafka_topic_partitions)
    await rewind_journal(runtime)
    return True


async def watch_broker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The API-only process's watch (role ``all`` leaves it to the topic watch's canary)."""
    if runtime.settings.role.runs_workers:
        return
    seconds = float(getattr(runtime.settings, "broker_watch_seconds", 3.0))
    await every(stop, seconds, lambda: check_once(runtime), "broker watch")
