"""ranking_clicks_monthly: counted clicks per month and employee / content, for the top N by clicks

The ranking by counted clicks (the console's top 10s, issue 20) summed every group's roll-up rows
of the range: 845k rows for a year by employee (3.2 s p99). This narrow list (one row per month
and key, summed over networks) with ``bucket`` = floor(log2 clicks) indexed lets the read take only
candidates, highest bucket first, and stop with an exact test (Fagin's threshold algorithm,
``queries.ranked_keys``). ``clicks_counted`` is in no index and ``bucket`` moves only across a
power of two, so nearly every update stays HOT (0005's rationale; fillfactor 70 likewise).

The tenants that have monthly stats get an ``aggregate_backfills`` marker: their reads keep the
full ranking until ``advocacy metrics backfill`` has filled the table (plain SQL: works under
``--sql``). Expand-only.

Revision ID: 0014_ranking_clicks
Revises: 0013_adoption_steps
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from advocacy_metrics.adapters.backfills import mark_tenants_sql

revision: str = "0014_ranking_clicks"
down_revision: str | None = "0013_adoption_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ranking_clicks_monthly (
          tenant_id varchar NOT NULL,
          group_by varchar NOT NULL,
          month date NOT NULL,
          key varchar NOT NULL,
          clicks_counted bigint NOT NULL DEFAULT 0,
          bucket smallint GENERATED ALWAYS AS
            ((length(ltrim(clicks_counted::bit(64)::text, '0')) - 1)::smallint) STORED,
          PRIMARY KEY (tenant_id, group_by, month, key)
        ) WITH (fillfactor = 70)
        """
    )
    op.execute(
        "CREATE INDEX ix_ranking_clicks_monthly_top ON ranking_clicks_monthly "
        "(tenant_id, group_by, month, bucket DESC) INCLUDE (key)"
    )
    op.execute(mark_tenants_sql("ranking_clicks", ("employee_monthly_stats", "content_monthly_stats")))


def downgrade() -> None:
    op.execute("DELETE FROM aggregate_backfills WHERE aggregate = 'ranking_clicks'")
    op.execute("DROP TABLE ranking_clicks_monthly")
