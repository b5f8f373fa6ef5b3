"""points_totals: ``bucket`` (the points' octave) and rank indexes on it; fillfactor 70

Every window total's update wrote a new row version with new entries in three indexes (the primary
key and the two rank indexes, which held ``points``), so none was HOT, and over a long drain the
dead entries slowed the totals statement from 70 to 150-200 ms a batch (docs/adr/0028, issue 19).
The new rank indexes hold ``bucket``, the signed bit length of the points
(``domain.points_bucket``, ``db.POINTS_BUCKET_SQL``): an update that keeps the points within their
power of two changes no indexed column, so it is HOT when its page has room, which fillfactor 70
gives it (docs/adr/0032-board-ranks-by-points-bucket.md). A board's page walks the buckets from the
cursor's down, sorting each by points then employee (``features.leaderboard.ranked_page``).

A generated column, not one the code writes: pods of the release before this one keep writing
``points`` while this one rolls out, and the column follows them. Adding it rewrites the table
and its indexes under an exclusive lock (the consumer and the boards wait meanwhile: 7-8 s per
million rows, 280 MB with the 0011 indexes, measured on the 2-core dev machine with fsync on and
off; PostgreSQL has no way to add a stored column without the rewrite); the rewrite packs the rows
at the new fillfactor. The new indexes are then built ``CONCURRENTLY`` (4-5 s per million rows,
without blocking). On a large deployment run this migration by hand first (docs/operations.md).
Expand: ``ix_points_rank`` and ``ix_points_team`` (read by the release before) are dropped by
``0013_drop_points_rank_indexes``.

Revision ID: 0012_points_bucket
Revises: 0011_drop_unread_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_points_bucket"
down_revision: str | None = "0011_drop_unread_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: 0012's own copy of ``db.POINTS_BUCKET_SQL`` as it was (a migration's text does not follow the code).
POINTS_BUCKET_SQL = (
    "((CASE WHEN points < 0 THEN -1 ELSE 1 END) * length(ltrim(abs(points::bigint)::bit(64)::text, '0')))::smallint"
)
INDEXES = {
    "ix_points_bucket": 'ON points_totals (tenant_id, "window", window_start, bucket DESC) WHERE ranked',
    "ix_points_team_bucket": 'ON points_totals (tenant_id, "window", window_start, team, bucket DESC) WHERE ranked',
}


def upgrade() -> None:
    # one statement: the fillfactor is set before the column's rewrite, which then packs at 70
    op.execute(
        "ALTER TABLE points_totals SET (fillfactor = 70), "
        f"ADD COLUMN bucket smallint GENERATED ALWAYS AS ({POINTS_BUCKET_SQL}) STORED"
    )
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute("ALTER TABLE points_totals DROP COLUMN bucket, RESET (fillfactor)")
