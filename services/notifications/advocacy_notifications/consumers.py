"""The notifications service's consumer groups (handlers: features/inbound.py)."""

from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_notifications.features.inbound import on_content, on_gamification

CONSUMERS = [
    ConsumerSpec(group_id="notifications", topics=(topics.CONTENT, topics.SHARES, topics.METRICS), handler=on_content),
    ConsumerSpec(group_id="notifications-gamification", topics=(topics.GAMIFICATION,), handler=on_gamification),
]
