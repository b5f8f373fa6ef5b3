"""conversion roll-ups indexed in the summary's group order

A summary page in key order sums the conversions of its groups only: keys after the cursor and up
to the page's last key, in code-point order (``COLLATE "C"``). The stats roll-ups have indexes in
that order (0006); the conversion roll-ups a page reads did not, so each page scanned the range's
conversions whole (a year by content: 62,800 rows read for ~15,000 kept). Conversions are ~1% of
clicks, so these indexes cost the write path little. Built ``CONCURRENTLY``. Expand-only.

Revision ID: 0012_conversion_pages
Revises: 0011_membership_covering_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_conversion_pages"
down_revision: str | None = "0011_membership_covering_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_content_monthly_conversions_pages", "content_monthly_conversions", "content_id", "month"),
    ("ix_daily_conversions_employee_pages", "daily_conversions", "employee_id", "day"),
    ("ix_daily_conversions_content_pages", "daily_conversions", "content_id", "day"),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, key, period in INDEXES:
            op.execute(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} (tenant_id, {key} COLLATE "C", {period})'
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, _table, _key, _period in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
