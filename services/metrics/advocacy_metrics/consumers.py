from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_metrics import service

CONSUMERS = [
    ConsumerSpec(group_id="metrics", topics=(topics.SHARES, topics.CLICKS), handler=service.record_events),
]
