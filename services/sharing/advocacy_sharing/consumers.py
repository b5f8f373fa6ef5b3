"""Events in -> service calls."""

from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import CLICK_PATH_FETCH_MAX_WAIT_MS, ConsumerSpec
from advocacy_sharing.features import clicks, shares

CONSUMERS = [
    ConsumerSpec(group_id="sharing-content", topics=(topics.CONTENT,), handler=shares.apply_content_events),
    # The verdict worker is the slowest hop between a click and the live board (docs/latency-budget.md,
    # bench/latency.py): it fetches and decodes the next batch while one is applied. Measured at 1,000
    # clicks/s on a loaded 2-core machine, fetching after the commit left it idle 77 ms (p50) to
    # 350 ms (p90) between batches of 1,000 that took ~620 ms. A shorter fetch wait than the other
    # consumers' (stage ``verdict_wait``): see ConsumerSpec.fetch_max_wait_ms.
    ConsumerSpec(
        group_id="sharing-clicks",
        topics=(topics.CLICKS_RAW,),
        handler=clicks.judge_clicks,
        fetch_ahead=True,
        fetch_max_wait_ms=CLICK_PATH_FETCH_MAX_WAIT_MS,
    ),
]
