from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_notifications.features.copies import apply_events

CONSUMERS = [
    ConsumerSpec(group_id="notifications", topics=(topics.CONTENT,), handler=apply_events),
]
