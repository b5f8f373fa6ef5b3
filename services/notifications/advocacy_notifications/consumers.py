from __future__ import annotations

from advocacy_common import topics
from advocacy_common.consumer import ConsumerSpec
from advocacy_notifications.features.chat import apply_gamification
from advocacy_notifications.features.copies import apply_events

CONSUMERS = [
    ConsumerSpec(
        group_id="notifications", topics=(topics.CONTENT, topics.SHARES, topics.METRICS), handler=apply_events
    ),
    # the team channels' announcements (badges)
    ConsumerSpec(group_id="notifications-gamification", topics=(topics.GAMIFICATION,), handler=apply_gamification),
]
