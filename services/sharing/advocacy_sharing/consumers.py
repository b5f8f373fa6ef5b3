"""Events in -> service calls."""

from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_sharing import judging, service

CONSUMERS = [
    ConsumerSpec(group_id="sharing-content", topics=(topics.CONTENT,), handler=service.apply_content_events),
    ConsumerSpec(group_id="sharing-clicks", topics=(topics.CLICKS_RAW,), handler=judging.judge_clicks),
]
