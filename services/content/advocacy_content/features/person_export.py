"""Content's part of a person's data export (:mod:`advocacy_common.person_export`): their
directory entry (the SCIM user, as provisioned) and the directory groups they are in (by display
name), membership and topics, what they shared, their coaching threads and replies, the content
they proposed or created, and the audit entries they made or that are about them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from advocacy_common.person_export import Section
from advocacy_content.db import ScimGroupMembers, ScimGroups, ScimUsers, metadata

T = metadata.tables


def _groups(tenant_id: str, employee_id: str) -> sa.Select[Any]:
    """The directory groups the person is in: their memberships, through their SCIM user (a
    membership names the SCIM id, not the employee id). Erasure deletes them with the user (cascade)."""
    u, g, gm = ScimUsers, ScimGroups, ScimGroupMembers
    return (
        sa.select(g.c.id.label("group_id"), g.c.display_name, gm.c.display.label("display_in_group"))
        .select_from(
            gm.join(u, sa.and_(u.c.tenant_id == gm.c.tenant_id, u.c.id == gm.c.user_id)).join(
                g, sa.and_(g.c.tenant_id == gm.c.tenant_id, g.c.id == gm.c.group_id)
            )
        )
        .where(u.c.tenant_id == tenant_id, u.c.employee_id == employee_id)
        .order_by(g.c.display_name_key, g.c.id)
    )


SECTIONS = (
    Section("membership", T["members"]),
    Section("directory", T["scim_users"], omit=("user_name_key",)),  # as the identity provider provisioned them
    Section("directory_groups", T["scim_group_members"], query=_groups),
    Section("shared_content", T["shared_content"], newest_first="first_shared_at"),
    Section("coaching_requests", T["coaching_requests"], person="requester_id"),
    Section("coaching_replies", T["coaching_replies"], person="author_id"),
    Section("suggestions", T["content_items"], person="proposer_id", omit=("search",)),
    Section("content_created", T["content_items"], person="created_by", omit=("search",)),
    Section("audit_by_them", T["audit_log"], person="actor", newest_first="at"),
    Section("audit_about_them", T["audit_log"], person="target", newest_first="at"),
)
