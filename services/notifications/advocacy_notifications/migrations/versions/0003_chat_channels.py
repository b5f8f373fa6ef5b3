"""Team channels (issue 18): a tenant's Slack and Teams webhook URLs, the messages posted to them,
and the people's leaderboard visibility (announcements name only the ranked).

Expand-only: two new tables, one new column with a server default.

Revision ID: 0003_chat_channels
Revises: 0002_suppressions
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_chat_channels"
down_revision: str | None = "0002_suppressions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.add_column("members", sa.Column("leaderboard", S(), server_default="ranked", nullable=False))
    op.create_table(
        "chat_channels",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("channel", S(), nullable=False),
        sa.Column("url", S(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "channel"),
    )
    op.create_table(
        "chat_messages",
        sa.Column("id", S(), nullable=False),
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("channel", S(), nullable=False),
        sa.Column("employee_id", S(), nullable=True),
        sa.Column("dedupe_key", S(), nullable=False),
        sa.Column("category", S(), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", S(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", S(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "dedupe_key", name="uq_chat_messages_dedupe"),
    )
    op.create_index(
        "ix_chat_messages_pending",
        "chat_messages",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_chat_messages_employee", "chat_messages", ["tenant_id", "employee_id"])


def downgrade() -> None:
    op.drop_table("chat_messages")
    op.drop_table("chat_channels")
    op.drop_column("members", "leaderboard")
