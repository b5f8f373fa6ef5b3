"""When the expiring-content pass began its sweep of an item's people (``expiry_scans.started_at``):
a finished sweep is made again when a roll-out wave of the tenant opened after it began, so
people whose wave opens late in the notice window are told too (issue 18).

Expand-only: one nullable column (a row without it is a sweep of the old code: never revisited).

Revision ID: 0010_expiry_rescan
Revises: 0009_directory_language
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_expiry_rescan"
down_revision: str | None = "0009_directory_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("expiry_scans", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("expiry_scans", "started_at")
