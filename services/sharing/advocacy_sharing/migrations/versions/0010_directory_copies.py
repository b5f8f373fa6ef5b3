"""The company directory's copy in sharing (issue 17): ``directory_copies``, one row per provisioned
person (active flag, team, department, location), from content's member.provisioned. Expand-only:
a new table; nothing that running code reads changes.

Revision ID: 0010_directory_copies
Revises: 0009_erasure_tombstones
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010_directory_copies"
down_revision: str | None = "0009_erasure_tombstones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_copies",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("employee_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("department", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("location", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id"),
    )


def downgrade() -> None:
    op.drop_table("directory_copies")
