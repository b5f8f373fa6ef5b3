"""drop ``ix_ledger_ref`` and ``ix_points_employee``: the contract step of ``0010_boards``

No code since 0010 reads them (docs/operations.md, "Removals due"): an invalidated click's award is
found by its event id on ``uq_ledger_event_rule``, an admin's reversal by ``ix_ledger_employee``, a
person's ``points_totals`` rows through ``boards``, one primary-key probe per board. Every award
wrote an entry into the first, every window total moved (three per person per batch: totals are not
updated in place, their points are in the rank indexes) one into the second (issue 19 item 1).

The boards are listed again first: windows opened by pods of the release before 0010 while it
rolled out have totals but maybe no ``boards`` row. The indexes are dropped ``CONCURRENTLY`` (a live
deployment keeps writing), outside a transaction; the downgrade builds them again the same way.

Revision ID: 0011_drop_unread_indexes
Revises: 0010_boards
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_drop_unread_indexes"
down_revision: str | None = "0010_boards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_ledger_ref": "ON ledger (tenant_id, ref) WHERE ref IS NOT NULL",
    "ix_points_employee": "ON points_totals (tenant_id, employee_id)",
}


def upgrade() -> None:
    op.execute(
        'INSERT INTO boards (tenant_id, "window", window_start) '
        'SELECT DISTINCT tenant_id, "window", window_start FROM points_totals ON CONFLICT DO NOTHING'
    )
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")
