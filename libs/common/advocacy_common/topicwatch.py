"""Keep the topics there, and notice a broker that lost its log (every worker process).

Our clients never auto-create topics (``advocacy_common.kafka``), so a topic that disappears stays
missing until someone creates it. Every few seconds a worker lists the broker's topics: what it
needs and is missing is created with the configured partition count. The worker's own dead-letter
topics are its canary: only this service creates them, at start, so when one is missing the broker
lost its log (an embedded broker restarted empty, a cluster rebuilt), and then every consumer of
the process reads its partitions again from the start (its position and committed offsets belong
to the lost log: kept, they would skip what is re-published below them), the service re-publishes
its outbox within retention and runs the definition's ``on_broker_wiped`` hook. Consumers
deduplicate by event id, so re-reading and re-publishing what the new broker may already hold is
harmless. A broker that does not answer is not "wiped": nothing is decided until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from advocacy_common import topics
from advocacy_common.kafka import ensure_topics, missing_topics
from advocacy_common.settings import ServiceSettings

log = logging.getLogger("advocacy.topicwatch")


class _Spec(Protocol):
    @property
    def group_id(self) -> str: ...


class _Consumer(Protocol):
    @property
    def spec(self) -> _Spec: ...

    def rewind(self) -> None: ...


class _Relay(Protocol):
    async def republish_since(self, since: datetime) -> int: ...


class _Definition(Protocol):
    @property
    def on_broker_wiped(self) -> Callable[[Any], Awaitable[None]] | None: ...


class Watched(Protocol):
    """What the watch needs of a running process (:class:`advocacy_common.runtime.Runtime` is one)."""

    @property
    def settings(self) -> ServiceSettings: ...
    @property
    def consumers(self) -> Sequence[_Consumer]: ...
    @property
    def relay(self) -> _Relay | None: ...
    @property
    def definition(self) -> _Definition: ...


async def check_once(runtime: Watched) -> bool:
    """Recreate missing topics; True when the canary says the broker was wiped (and we re-published)."""
    s = runtime.settings
    canaries = [topics.dead_letter(c.spec.group_id) for c in runtime.consumers]
    wanted = [*topics.ALL_TOPICS, *canaries]
    try:
        missing = await missing_topics(s.kafka, wanted)
    except Exception:
        return False  # unreachable: nothing to decide
    if not missing:
        return False
    await ensure_topics(s.kafka, missing, s.kafka_topic_partitions)
    wiped = any(t in missing for t in canaries)
    if not wiped:
        log.info("created missing topics", extra={"topics": missing})
        return False
    log.warning("the broker lost its log: topics recreated, re-publishing the outbox", extra={"topics": missing})
    for consumer in runtime.consumers:
        consumer.rewind()
    if runtime.relay is not None:
        n = await runtime.relay.republish_since(datetime.now(UTC) - timedelta(days=s.outbox_retention_days))
        log.warning("re-publishing outbox events", extra={"events": n})
    hook = runtime.definition.on_broker_wiped
    if hook is not None:
        await hook(runtime)
    return True


async def every(stop: asyncio.Event, seconds: float, check: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``check`` every ``seconds`` until ``stop``; a failing check is logged and tried again."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if stop.is_set():
            return
        try:
            await check()
        except Exception as e:
            log.warning("periodic check failed", extra={"check": what, "error": f"{type(e).__name__}: {e}"})


async def watch_topics(runtime: Watched, stop: asyncio.Event) -> None:
    await every(stop, runtime.settings.kafka_topic_watch_seconds, lambda: check_once(runtime), "topic watch")
