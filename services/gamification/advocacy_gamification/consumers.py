from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import CLICK_PATH_FETCH_MAX_WAIT_MS, ConsumerSpec
from advocacy_gamification.features.awards import KEYED_TYPES, LIGHT_TYPES, apply_events

CONSUMERS = [
    ConsumerSpec(
        group_id="gamification",
        topics=(topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT),
        handler=apply_events,
        pause_gc=True,  # batches of thousands of events: see advocacy_common.consumer.gc_paused
        # Fetch ahead only after a batch of fewer than 1,000 events: live (the click path's
        # ``award_wait``) the next fetch runs while a batch is applied; a backlog's batches of 9,000
        # (settings.consumer_batch_max) are one decoded batch in memory, not two, under the RSS that
        # two batches of 5,000 left (ADR 0036).
        fetch_ahead=True,
        fetch_ahead_below=1000,
        # on the click path (stage ``award_wait`` of docs/latency-budget.md): ConsumerSpec.fetch_max_wait_ms
        fetch_max_wait_ms=CLICK_PATH_FETCH_MAX_WAIT_MS,
        keyed_types=KEYED_TYPES,  # counted clicks: keyed by the ledger (docs/adr/0022-...)
        light_types=LIGHT_TYPES,  # clicks as light data (msgspec twins of ShareClicked): only read (ADR 0037)
        lanes=2,  # a backlog's batch as two transactions at once, a person's events in one (ADR 0028)
    ),
]
