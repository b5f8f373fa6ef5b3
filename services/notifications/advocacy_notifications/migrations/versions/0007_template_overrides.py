"""A tenant's template overrides and the language of messages, per person and per tenant (issue 18).

Expand-only: three new tables.

Revision ID: 0007_template_overrides
Revises: 0006_event_notices
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_template_overrides"
down_revision: str | None = "0006_event_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "template_overrides",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("name", S(), nullable=False),
        sa.Column("language", S(), nullable=False),
        sa.Column("subject", S(), nullable=True),
        sa.Column("text", S(), nullable=True),
        sa.Column("html", S(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "name", "language"),
    )
    op.create_table(
        "member_languages",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("employee_id", S(), nullable=False),
        sa.Column("language", S(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_id"),
    )
    op.create_table(
        "tenant_languages",
        sa.Column("tenant_id", S(), nullable=False),
        sa.Column("language", S(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("tenant_languages")
    op.drop_table("member_languages")
    op.drop_table("template_overrides")
