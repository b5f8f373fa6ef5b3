"""Notifications' part of a person's data export (:mod:`advocacy_common.person_export`): its copy of
them, their preferences, their digest state and every message composed for them (its text, as sent
or waiting), their address if it bounced, and what the tenant's Slack and Teams channels were told
about them (a badge: the payload as posted), their quiet hours, and what they shared (as copied from
sharing's events: the expiry notice skips it)."""

from __future__ import annotations

from advocacy_common.person_export import Section
from advocacy_notifications.db import metadata

T = metadata.tables
SECTIONS = (
    Section("member", T["members"]),
    Section("preferences", T["preferences"]),
    Section("digest_state", T["digest_states"]),
    Section("messages", T["messages"], newest_first="created_at"),
    Section("suppressed_addresses", T["suppressions"]),
    Section("team_channel_messages", T["chat_messages"], newest_first="created_at"),
    Section("quiet_hours", T["quiet_hours"]),
    Section("shared_items", T["shared_items"], newest_first="shared_at"),
)
