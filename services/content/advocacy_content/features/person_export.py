"""Content's part of a person's data export (:mod:`advocacy_common.person_export`): their
directory entry (the SCIM user, as provisioned), membership and topics, what they shared, their
coaching threads and replies, the content they proposed or created, and the audit entries they made
or that are about them."""

from __future__ import annotations

from advocacy_common.person_export import Section
from advocacy_content.db import metadata

T = metadata.tables
SECTIONS = (
    Section("membership", T["members"]),
    Section("directory", T["scim_users"], omit=("user_name_key",)),  # as the identity provider provisioned them
    Section("shared_content", T["shared_content"], newest_first="first_shared_at"),
    Section("coaching_requests", T["coaching_requests"], person="requester_id"),
    Section("coaching_replies", T["coaching_replies"], person="author_id"),
    Section("suggestions", T["content_items"], person="proposer_id", omit=("search",)),
    Section("content_created", T["content_items"], person="created_by", omit=("search",)),
    Section("audit_by_them", T["audit_log"], person="actor", newest_first="at"),
    Section("audit_about_them", T["audit_log"], person="target", newest_first="at"),
)
