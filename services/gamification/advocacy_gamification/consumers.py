from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_gamification import service

CONSUMERS = [
    ConsumerSpec(group_id="gamification", topics=(topics.SHARES, topics.CLICKS), handler=service.apply_events),
]
