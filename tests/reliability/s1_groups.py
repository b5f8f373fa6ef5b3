"""The consumer groups whose counts the scenarios check, and the topics each consumes."""

from __future__ import annotations

from advocacy_common import topics

GROUP_TOPICS = {
    "metrics": (topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT, topics.GAMIFICATION),
    "gamification": (topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT),
}
