"""Per-event notices (issue 18): the tenant's default per category and channel
(``category_defaults``) and gamification's challenges with how far their start and end
announcements got (``challenge_copies``).

Expand-only: new tables.

Revision ID: 0006_event_notices
Revises: 0005_admin_reports
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_event_notices"
down_revision: str | None = "0005_admin_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "category_defaults",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("category", S(), nullable=False),
        sa.Column("channel", S(), nullable=False),
        sa.Column("frequency", S(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "category", "channel"),
    )
    op.create_table(
        "challenge_copies",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("challenge_id", S(), nullable=False),
        sa.Column("name", S(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("goal_kind", S(), nullable=False),
        sa.Column("finalised_at", TS, nullable=True),
        sa.Column("start_after", S(), nullable=True),
        sa.Column("start_done", sa.Boolean(), nullable=False),
        sa.Column("end_after", S(), nullable=True),
        sa.Column("end_done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "challenge_id"),
    )
    op.create_index(
        "ix_challenge_copies_start", "challenge_copies", ["starts_at"], postgresql_where=sa.text("NOT start_done")
    )
    op.create_index(
        "ix_challenge_copies_end",
        "challenge_copies",
        ["finalised_at"],
        postgresql_where=sa.text("finalised_at IS NOT NULL AND NOT end_done"),
    )


def downgrade() -> None:
    op.drop_index("ix_challenge_copies_end", table_name="challenge_copies")
    op.drop_index("ix_challenge_copies_start", table_name="challenge_copies")
    op.drop_table("challenge_copies")
    op.drop_table("category_defaults")
