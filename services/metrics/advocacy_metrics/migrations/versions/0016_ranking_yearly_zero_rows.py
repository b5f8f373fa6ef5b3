"""ranking_clicks_yearly: rows at 0 for the groups present in a year without counted clicks

A page past a year's counted groups (the ranking's tail: groups with only shares, other verdicts or
conversions) was found by a pass over the year's roll-up rows at 0 counted clicks less the counted
groups. At 100,000 employees those rows cover 55k of the 70k employees (any employee with a network
or month at 0), so the pass read 845k rows to find the few groups at 0 (~200 ms a last page). The
list now holds every group present in a year (a stats or conversion roll-up row in it), at 0 when
it has no counted click: the tail is a range of the list, in key order.

The index in the ranking's order gains the key (``COLLATE "C"``, the pages' order) after the
bucket, so the rows at 0 (one bucket, ``domain.YEARLY_ZERO_BUCKET``) are read in key order off
it. ``key`` never changes: the updates that stayed HOT still do. Every tenant with monthly stats
gets an ``aggregate_backfills`` marker: its reads take the other paths until ``advocacy metrics
backfill`` adds the rows at 0 (it writes only the rows that change); no code reads the list of a
tenant with the marker, so the old code never pages over rows at 0.

Revision ID: 0016_ranking_yearly_zero_rows
Revises: 0015_ranking_clicks_yearly
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from advocacy_metrics.adapters.backfills import mark_tenants_sql

revision: str = "0016_ranking_yearly_zero_rows"
down_revision: str | None = "0015_ranking_clicks_yearly"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_ranking_clicks_yearly_order "
        'ON ranking_clicks_yearly (tenant_id, group_by, year, bucket DESC, key COLLATE "C")'
    )
    op.execute("DROP INDEX ix_ranking_clicks_yearly_top")
    sources = ("employee_monthly_stats", "content_monthly_stats", "daily_conversions")
    op.execute(mark_tenants_sql("ranking_clicks_yearly", sources))


def downgrade() -> None:
    op.execute("DELETE FROM ranking_clicks_yearly WHERE clicks_counted = 0")
    op.execute(
        "CREATE INDEX ix_ranking_clicks_yearly_top ON ranking_clicks_yearly (tenant_id, group_by, year, bucket DESC)"
    )
    op.execute("DROP INDEX ix_ranking_clicks_yearly_order")
