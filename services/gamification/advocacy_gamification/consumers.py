from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import CLICK_PATH_FETCH_MAX_WAIT_MS, ConsumerSpec
from advocacy_gamification.features.awards import KEYED_TYPES, apply_events

CONSUMERS = [
    ConsumerSpec(
        group_id="gamification",
        topics=(topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT),
        handler=apply_events,
        pause_gc=True,  # batches of thousands of events: see advocacy_common.consumer.gc_paused
        fetch_ahead=True,
        # on the click path (stage ``award_wait`` of docs/latency-budget.md): ConsumerSpec.fetch_max_wait_ms
        fetch_max_wait_ms=CLICK_PATH_FETCH_MAX_WAIT_MS,
        keyed_types=KEYED_TYPES,  # counted clicks: keyed by the ledger (docs/adr/0022-...)
        lanes=2,  # a backlog's batch as two transactions at once, a person's events in one (ADR 0028)
    ),
]
