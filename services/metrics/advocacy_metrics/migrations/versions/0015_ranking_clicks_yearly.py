"""ranking_clicks_yearly: counted clicks per calendar year and employee / content, indexed by clicks

A summary by clicks past its first pages (cursor deep in the ranking) cannot be proved from
``ranking_clicks_monthly``'s candidates: the threshold search gives up and every group of the range
is summed (the full ranking: 845k monthly roll-up rows for a year by employee, ~760 ms at 100,000
employees). With one row per year and key and an index in the ranking's order (clicks descending,
key in code-point order), any page of a calendar year is one index range from the cursor on.

``clicks_counted`` is in the index, so its updates are not HOT: the cost is on the consumer's
path (one upserted row per employee and content a batch touches in a year), measured in
bench/RESULTS.md. Rows are never at 0 (deleted), like the monthly list. The tenants with monthly
stats get an ``aggregate_backfills`` marker; their reads keep the other paths until
``advocacy metrics backfill`` fills the table. Expand-only.

Revision ID: 0015_ranking_clicks_yearly
Revises: 0014_ranking_clicks
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from advocacy_metrics.adapters.backfills import mark_tenants_sql

revision: str = "0015_ranking_clicks_yearly"
down_revision: str | None = "0014_ranking_clicks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ranking_clicks_yearly (
          tenant_id varchar NOT NULL,
          group_by varchar NOT NULL,
          year smallint NOT NULL,
          key varchar NOT NULL,
          clicks_counted bigint NOT NULL DEFAULT 0,
          PRIMARY KEY (tenant_id, group_by, year, key)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_ranking_clicks_yearly_rank ON ranking_clicks_yearly "
        '(tenant_id, group_by, year, clicks_counted DESC, key COLLATE "C")'
    )
    op.execute(mark_tenants_sql("ranking_clicks_yearly", ("employee_monthly_stats", "content_monthly_stats")))


def downgrade() -> None:
    op.execute("DELETE FROM aggregate_backfills WHERE aggregate = 'ranking_clicks_yearly'")
    op.execute("DROP TABLE ranking_clicks_yearly")
