"""drop ``ix_points_rank`` and ``ix_points_team``: the contract step of ``0012_points_bucket``

No code since 0012 reads them: the boards read ``ix_points_bucket`` and ``ix_points_team_bucket``
(docs/operations.md, "Removals due"). While they exist they hold ``points``, so every update of a
window total still writes into them and none is HOT: 0012's gain on the consumer arrives with this
step. Dropped ``CONCURRENTLY`` (a live deployment keeps writing), outside a transaction; the
downgrade builds them again the same way.

Revision ID: 0013_drop_points_rank_indexes
Revises: 0012_points_bucket
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013_drop_points_rank_indexes"
down_revision: str | None = "0012_points_bucket"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_points_rank": 'ON points_totals (tenant_id, "window", window_start, points DESC, employee_id) WHERE ranked',
    "ix_points_team": (
        'ON points_totals (tenant_id, "window", window_start, team, points DESC, employee_id) WHERE ranked'
    ),
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")
