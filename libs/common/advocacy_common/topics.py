"""Kafka topic names. Domain topics are internal (they mix tenants); partners get their own feed."""

from __future__ import annotations

CONTENT = "advocacy.content"
SHARES = "advocacy.shares"
CLICKS = "advocacy.clicks"
# Raw redirect hits, keyed by link, consumed only by sharing's verdict worker.
CLICKS_RAW = "advocacy.clicks.raw"
CONVERSIONS = "advocacy.conversions"
GAMIFICATION = "advocacy.gamification"

ALL_TOPICS = [CONTENT, SHARES, CLICKS, CLICKS_RAW, CONVERSIONS, GAMIFICATION]


def dead_letter(group_id: str) -> str:
    """One dead-letter topic per consumer group, so a poisoned event names who refused it."""
    return f"advocacy.dlq.{group_id}"


def partner_feed(tenant_id: str) -> str:
    return f"advocacy.partner.{tenant_id}"
