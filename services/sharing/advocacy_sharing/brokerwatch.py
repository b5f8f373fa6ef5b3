"""Notice a broker that lost its log and re-publish what sharing retains (DESIGN.md).

Every few seconds: are our topics there? When they are missing (an embedded broker restarted empty,
a cluster rebuilt), recreate them and re-publish: the click journal from its oldest retained
segment (API processes) and the outbox within its retention (worker processes). Consumers
deduplicate by event id, so a re-publish is harmless. A broker that does not answer at all is not
"lost": the journal and the outbox simply wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from advocacy_common import topics
from advocacy_common.kafka import ensure_topics, missing_topics
from advocacy_common.runtime import Runtime
from advocacy_sharing.spool import ClickJournal

log = logging.getLogger("advocacy.sharing.brokerwatch")


async def check_once(runtime: Runtime) -> bool:
    """True when the broker had lost our topics and we re-published."""
    s = runtime.settings
    wanted = list(topics.ALL_TOPICS)
    try:
        missing = await missing_topics(s.kafka_bootstrap_servers, wanted)
    except Exception:
        return False  # unreachable: nothing to decide
    if not missing:
        return False
    log.warning("the broker lost topics %s: recreating them and re-publishing what we retain", missing)
    await ensure_topics(s.kafka_bootstrap_servers, wanted, s.kafka_topic_partitions)
    journal: ClickJournal | None = runtime.extras.get("journal")
    if journal is not None:
        journal.rewind()
        sender = runtime.extras.get("sender")
        if sender is not None:
            sender.wake()
    if runtime.relay is not None:
        n = await runtime.relay.republish_since(datetime.now(UTC) - timedelta(days=s.outbox_retention_days))
        log.warning("re-publishing %d outbox events", n)
    return True


async def watch_broker(runtime: Runtime, stop: asyncio.Event) -> None:
    every = float(getattr(runtime.settings, "broker_watch_seconds", 3.0))
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        try:
            await check_once(runtime)
        except Exception as e:
            log.warning("broker watch: %s", e)
