"""One-click share links from messages (issue 18, ADR 0016): ``action_link_uses``, the ``jti`` of
every link used, unique per tenant, so a link creates a share once. Expand-only: a new table.

Revision ID: 0011_action_link_uses
Revises: 0010_directory_copies
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_action_link_uses"
down_revision: str | None = "0010_directory_copies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_link_uses",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("share_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "jti"),
    )


def downgrade() -> None:
    op.drop_table("action_link_uses")
