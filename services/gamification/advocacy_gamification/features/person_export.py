"""Gamification's part of a person's data export (:mod:`advocacy_common.person_export`): their
membership, points ledger, totals and balance, badges, statistics, redemptions, challenge standings
and audit entries."""

from __future__ import annotations

from advocacy_common.person_export import Section
from advocacy_gamification.db import metadata

T = metadata.tables
SECTIONS = (
    Section("membership", T["members"]),
    Section("ledger", T["ledger"], newest_first="created_at"),
    Section("balance", T["balances"]),
    Section("points_totals", T["points_totals"], omit=("bucket",)),  # bucket: the rank index's key
    Section("daily_counts", T["daily_counts"], newest_first="day"),
    Section("stats", T["member_stats"]),
    Section("badges", T["badges_earned"], newest_first="earned_at"),
    Section("redemptions", T["redemptions"], newest_first="created_at"),
    Section("challenge_totals", T["challenge_totals"]),
    Section("challenge_wins", T["challenge_winners"]),
    Section("audit_by_them", T["audit_log"], person="actor", newest_first="at"),
    Section("audit_about_them", T["audit_log"], person="target", newest_first="at"),
)
