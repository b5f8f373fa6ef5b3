"""Outbox rows can be parked: a row the broker will never take is set aside with its reason
(advocacy_common.outbox, issue 12).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("park_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_outbox_parked", "outbox", ["topic", "key"], postgresql_where=sa.text("parked_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_parked", table_name="outbox")
    op.drop_column("outbox", "park_reason")
    op.drop_column("outbox", "parked_at")
