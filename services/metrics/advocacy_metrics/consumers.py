from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_metrics.features import facts

CONSUMERS = [
    ConsumerSpec(
        group_id="metrics",
        topics=(topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT, topics.GAMIFICATION),
        handler=facts.record_events,
        pause_gc=True,  # batches of thousands of events: see advocacy_common.consumer.gc_paused
        fetch_ahead=True,
        # ...after a live batch only: a backlog's batches (9,000, settings) are one in memory, not two
        # (RSS after a drain 126 MB, where two of 7,000 left 137-140 MB: ADR 0037)
        fetch_ahead_below=1000,
        # points.awarded.v2 (half a record per click on the gamification topic) and content's events
        # are neither decoded nor claimed
        types=facts.HANDLED_TYPES,
        # a click's fact key is its guard, not the inbox (docs/adr/0021-fact-keyed-events-skip-the-inbox.md)
        keyed_types=facts.KEYED_TYPES,
        # a backlog's batch in two transactions at once, split by key (ADR 0028): events are keyed by
        # person, a person's aggregate rows are written first and the shared ones (teams, contents,
        # networks, dimensions) last (aggregates.plan), so the lanes wait on each other only at the end
        lanes=2,
        # clicks as light data (msgspec twins of ShareClicked): the handler only reads their fields
        light_types=facts.LIGHT_TYPES,
    ),
]
