"""Scheduled notices and consent details (issue 18): the nudge (people's last share, the period they
were last nudged for), content about to expire (what each person shared, the expiry pass's place),
quiet hours (a person's, the tenant's), the tenant's nudge and expiry settings, content's roll-out
waves, and the directory's own team (judged with eligibility.team_of).

Expand-only: new tables, new nullable columns or columns with a server default. ``directory_team``
is filled from ``team`` for people the directory lists (the only rows where it came from there).

Revision ID: 0004_nudges_quiet_hours_waves
Revises: 0003_chat_channels
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004_nudges_quiet_hours_waves"
down_revision: str | None = "0003_chat_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("members", sa.Column("directory_team", S(), nullable=True))
    op.add_column("members", sa.Column("last_shared_at", TS, nullable=True))
    op.add_column("members", sa.Column("first_seen_at", TS, server_default=sa.text("now()"), nullable=True))
    op.add_column("members", sa.Column("nudged_for", TS, nullable=True))
    op.execute("UPDATE members SET directory_team = team WHERE directory_at IS NOT NULL")
    op.add_column("tenant_defaults", sa.Column("nudge_after_days", sa.Integer(), server_default="30", nullable=False))
    op.add_column(
        "tenant_defaults", sa.Column("expiring_notice_hours", sa.Integer(), server_default="24", nullable=False)
    )
    op.add_column("tenant_defaults", sa.Column("quiet_start", sa.Integer(), nullable=True))
    op.add_column("tenant_defaults", sa.Column("quiet_end", sa.Integer(), nullable=True))
    op.create_table(
        "quiet_hours",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("employee_id", S(), nullable=False),
        sa.Column("start_hour", sa.Integer(), nullable=True),
        sa.Column("end_hour", sa.Integer(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id"),
    )
    op.create_table(
        "shared_items",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("employee_id", S(), nullable=False),
        sa.Column("content_id", S(), nullable=False),
        sa.Column("shared_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", "content_id"),
    )
    op.create_table(
        "wave_copies",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("wave_id", S(), nullable=False),
        sa.Column("name", S(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("teams", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("employees", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "wave_id"),
    )
    op.create_table(
        "expiry_scans",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("content_id", S(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("after", S(), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "content_id"),
    )


def downgrade() -> None:
    for table in ("expiry_scans", "wave_copies", "shared_items", "quiet_hours"):
        op.drop_table(table)
    for column in ("quiet_end", "quiet_start", "expiring_notice_hours", "nudge_after_days"):
        op.drop_column("tenant_defaults", column)
    for column in ("nudged_for", "first_seen_at", "last_shared_at", "directory_team"):
        op.drop_column("members", column)
