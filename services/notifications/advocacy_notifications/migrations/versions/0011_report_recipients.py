"""The weekly report's recipients a tenant lists (``report_admins.listed_at``), besides the admins
its API has seen (issue 18, ADR 0017 amended): a listed person is written to though their token
never reached this service, so ``seen_at`` may now be null.

Expand-only: one nullable column, and a NOT NULL dropped (the old code writes it and reads a null
as "not seen recently").

Revision ID: 0011_report_recipients
Revises: 0010_expiry_rescan
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_report_recipients"
down_revision: str | None = "0010_expiry_rescan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("report_admins", sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("report_admins", "seen_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM report_admins WHERE seen_at IS NULL")
    op.alter_column("report_admins", "seen_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.drop_column("report_admins", "listed_at")
