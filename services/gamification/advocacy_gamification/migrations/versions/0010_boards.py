"""``boards``: the list of (tenant, window, first day) with ``points_totals`` rows (issue 19 item 1).

Membership changes and erasure reach a person's totals rows through it, one primary-key probe per
board, so ``ix_points_employee`` (read only by them) can go; and a reversed click is found by its
event id (``clicked-{click_id}``, on the prefix of ``uq_ledger_event_rule``), so ``ix_ledger_ref``
can go too. Expand-only: a new table, filled here from the totals. The two indexes are dropped one
release later (docs/operations.md, "Removals due"), when no running code reads them; that
migration lists the boards again first (windows opened by pods of the release before this one
while it rolled out).

Revision ID: 0010_boards
Revises: 0009_directory
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010_boards"
down_revision: str | None = "0009_directory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "boards",
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("window", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "window", "window_start"),
    )
    op.execute(
        'INSERT INTO boards (tenant_id, "window", window_start) '
        'SELECT DISTINCT tenant_id, "window", window_start FROM points_totals ON CONFLICT DO NOTHING'
    )


def downgrade() -> None:
    op.drop_table("boards")
