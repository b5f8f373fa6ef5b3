"""The company directory's records in metrics (issue 17): ``directory_facts``, the history of each
provisioned person's active flag (content's member.provisioned); adoption's denominator is the
people active in it. Expand-only: a new table.

Revision ID: 0009_directory_facts
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009_directory_facts"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_facts",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("employee_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id", "updated_at"),
    )


def downgrade() -> None:
    op.drop_table("directory_facts")
