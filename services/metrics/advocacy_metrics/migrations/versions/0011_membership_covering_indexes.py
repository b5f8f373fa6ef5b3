"""membership and directory history indexed with the flag the adoption report reads

The adoption report takes each person's latest membership (or directory) fact before an instant:
``DISTINCT ON (employee_id) ... ORDER BY employee_id, updated_at DESC``. The primary key has that
order but not ``enrolled`` / ``active``, so the scan fetched every row from the heap (100,000
people: ~30,000 buffers). With the flag in the index it is an index-only scan. Both tables change
only when someone joins, leaves or is re-provisioned, so the write path barely notices. Built
``CONCURRENTLY``: a live deployment keeps writing while it builds. Expand-only.

Revision ID: 0011_membership_covering_indexes
Revises: 0010_weekly_reports
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_membership_covering_indexes"
down_revision: str | None = "0010_weekly_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_member_facts_latest", "member_facts", "enrolled"),
    ("ix_directory_facts_latest", "directory_facts", "active"),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, flag in INDEXES:
            op.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} "
                f"ON {table} (tenant_id, employee_id, updated_at) INCLUDE ({flag})"
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, _table, _flag in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
