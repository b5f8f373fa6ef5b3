"""Metrics' part of a person's data export (:mod:`advocacy_common.person_export`): the facts kept
about them (shares, clicks, conversions, accounts, membership, redemptions) and their own
statistics (by day, by month, sharing days)."""

from __future__ import annotations

from advocacy_common.person_export import Section
from advocacy_metrics.db import metadata

T = metadata.tables
SECTIONS = (
    Section("membership", T["member_facts"], newest_first="updated_at"),
    Section("directory", T["directory_facts"], newest_first="updated_at"),
    Section("accounts", T["account_facts"]),
    Section("shares", T["share_facts"], newest_first="created_at"),
    Section("clicks", T["click_facts"], newest_first="clicked_at"),
    Section("conversions", T["conversion_facts"], newest_first="occurred_at"),
    Section("redemptions", T["redemption_facts"], newest_first="redeemed_at"),
    Section("daily_stats", T["daily_stats"], newest_first="day"),
    Section("daily_conversions", T["daily_conversions"], newest_first="day"),
    Section("monthly_stats", T["employee_monthly_stats"], newest_first="month"),
    Section("sharer", T["sharers"]),
    Section("sharer_days", T["sharer_days"], newest_first="day"),
    Section("sharer_lapses", T["sharer_lapses"], newest_first="day"),
)
