"""Events in -> service calls."""

from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_sharing.features import clicks, shares

CONSUMERS = [
    ConsumerSpec(group_id="sharing-content", topics=(topics.CONTENT,), handler=shares.apply_content_events),
    ConsumerSpec(group_id="sharing-clicks", topics=(topics.CLICKS_RAW,), handler=clicks.judge_clicks),
]
