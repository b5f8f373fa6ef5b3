"""Sharing's part of a person's data export (:mod:`advocacy_common.person_export`): their shares,
network accounts, the clicks and conversions credited to them (without the visitors' hashes,
browsers or networks: those are other people's data), their membership and directory copies and audit entries."""

from __future__ import annotations

from advocacy_common.person_export import Section
from advocacy_sharing.db import metadata

T = metadata.tables
_VISITORS = ("visitor", "visitor_prev", "user_agent", "ip_network", "creator_visitor")
SECTIONS = (
    Section("shares", T["shares"], newest_first="created_at", omit=("creator_visitor",)),
    Section("accounts", T["accounts"]),
    Section("clicks", T["clicks"], newest_first="received_at", omit=_VISITORS),
    Section("conversions", T["conversions"], newest_first="occurred_at"),
    Section("membership", T["member_copies"]),
    Section("directory", T["directory_copies"]),
    Section("audit_by_them", T["audit_log"], person="actor", newest_first="at"),
    Section("audit_about_them", T["audit_log"], person="target", newest_first="at"),
)
