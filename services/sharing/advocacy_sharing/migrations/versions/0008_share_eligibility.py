"""Share eligibility (issue 13): sharing refuses a share the board would not show. Its copies of
content's audience (``content_copies.audience``), of programme membership (``member_copies``) and
of roll-out waves (``wave_copies``). Expand-only: a new column with a default (rows copied before:
``{}``, untargeted, as they behaved) and two new tables.

Revision ID: 0008_share_eligibility
Revises: 0007_sharing_audit_log
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_share_eligibility"
down_revision: str | None = "0007_sharing_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "content_copies",
        sa.Column("audience", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_table(
        "member_copies",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("employee_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("enrolled", sa.Boolean(), nullable=False),
        sa.Column("programme_roles", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id"),
    )
    op.create_table(
        "wave_copies",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("wave_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("teams", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("employees", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "wave_id"),
    )


def downgrade() -> None:
    op.drop_table("wave_copies")
    op.drop_table("member_copies")
    op.drop_column("content_copies", "audience")
