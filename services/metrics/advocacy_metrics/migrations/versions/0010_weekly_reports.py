"""The weekly programme report (issue 18): ``weekly_reports``, one row per tenant and week once its
``report.weekly`` event is in the outbox. Expand-only: a new table.

Revision ID: 0010_weekly_reports
Revises: 0009_directory_facts
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010_weekly_reports"
down_revision: str | None = "0009_directory_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "weekly_reports",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("report_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("composed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "week_start"),
    )


def downgrade() -> None:
    op.drop_table("weekly_reports")
