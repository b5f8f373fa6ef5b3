"""The weekly programme report to admins (issue 18): ``report_admins`` (the tenant's admins, as
their tokens showed them) and ``report_copies`` (metrics' report.weekly, until mailed).
Expand-only: new tables.

Revision ID: 0005_admin_reports
Revises: 0004_nudges_quiet_hours_waves
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005_admin_reports"
down_revision: str | None = "0004_nudges_quiet_hours_waves"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_admins",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("employee_id", S(), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id"),
    )
    op.create_table(
        "report_copies",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("report", JSONB(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("composed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "week_start"),
    )


def downgrade() -> None:
    op.drop_table("report_copies")
    op.drop_table("report_admins")
