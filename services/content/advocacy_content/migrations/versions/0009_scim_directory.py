"""The SCIM directory (issue 17): the per-tenant bearer secret's hash, users, groups, memberships.

Expand-only: four new tables, nothing else changes (docs/adr/0012-directory-in-content.md).

Revision ID: 0009_scim_directory
Revises: 0008_erasure_tombstones
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0009_scim_directory"
down_revision: str | None = "0008_erasure_tombstones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scim_secrets",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
        sa.Column("rotated_at", TS, nullable=False),
        sa.Column("rotated_by", sa.Text, nullable=False),
    )
    op.create_table(
        "scim_users",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("employee_id", sa.Text, nullable=False),
        sa.Column("user_name", sa.Text, nullable=False),
        sa.Column("user_name_key", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("emails", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("display_name", sa.Text),
        sa.Column("team", sa.Text),
        sa.Column("department", sa.Text),
        sa.Column("location", sa.Text),
        sa.Column("manager", sa.Text),
        sa.Column("employee_number", sa.Text),
        sa.Column("resource", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "user_name_key", name="uq_scim_users_user_name"),
        sa.UniqueConstraint("tenant_id", "employee_id", name="uq_scim_users_employee"),
    )
    op.create_index("ix_scim_users_external_id", "scim_users", ["tenant_id", "external_id"])
    op.create_index("ix_scim_users_emails", "scim_users", ["emails"], postgresql_using="gin")
    op.create_index("ix_scim_users_team", "scim_users", ["tenant_id", "team"])
    op.create_index("ix_scim_users_listing", "scim_users", ["tenant_id", "created_at", "id"])
    op.create_table(
        "scim_groups",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("display_name_key", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("resource", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "display_name_key", name="uq_scim_groups_display_name"),
    )
    op.create_index("ix_scim_groups_external_id", "scim_groups", ["tenant_id", "external_id"])
    op.create_index("ix_scim_groups_listing", "scim_groups", ["tenant_id", "created_at", "id"])
    op.create_table(
        "scim_group_members",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("group_id", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("display", sa.Text),
        sa.ForeignKeyConstraint(
            ["tenant_id", "group_id"], ["scim_groups.tenant_id", "scim_groups.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["scim_users.tenant_id", "scim_users.id"], ondelete="CASCADE"
        ),
    )
    op.create_index("ix_scim_group_members_user", "scim_group_members", ["tenant_id", "user_id"])


def downgrade() -> None:
    for table in ("scim_group_members", "scim_groups", "scim_users", "scim_secrets"):
        op.drop_table(table)
