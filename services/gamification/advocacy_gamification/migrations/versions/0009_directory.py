"""The company directory in gamification (issue 17): each member's ``active`` flag and the time of
the directory record it came from (``directory_at``), and ``team_sizes`` (team.updated), the
per-capita team board's divisors. Expand-only: two nullable-or-defaulted columns (rows before:
active, as they behaved), a partial index on the deactivated and a new table.

Revision ID: 0009_directory
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009_directory"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("members", sa.Column("directory_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "team_sizes",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "team"),
    )
    op.create_index(
        "ix_members_inactive", "members", ["tenant_id", "employee_id"], postgresql_where=sa.text("NOT active")
    )


def downgrade() -> None:
    op.drop_index("ix_members_inactive", table_name="members")
    op.drop_table("team_sizes")
    op.drop_column("members", "directory_at")
    op.drop_column("members", "active")
