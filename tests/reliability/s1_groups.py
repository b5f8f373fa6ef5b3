"""The consumer groups whose counts the scenarios check, and the topics each consumes."""

from __future__ import annotations

from advocacy_common import topics

GROUP_TOPICS = {
    "metrics": (topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT, topics.GAMIFICATION),
    "gamification": (topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.CONTENT),
}

# Every consumer group of the platform (what a wipe must leave exact), with its topics.
EVERY_GROUP = {
    **GROUP_TOPICS,
    "sharing-clicks": (topics.CLICKS_RAW,),
    "sharing-content": (topics.CONTENT,),
    "content-shares": (topics.SHARES,),
    "content-partner-feed": (topics.CONTENT, topics.SHARES, topics.CLICKS, topics.CONVERSIONS, topics.GAMIFICATION),
}
