"""ranking_clicks_yearly: counted clicks per calendar year and employee / content, for any page by clicks

A summary by clicks past its first pages (cursor deep in the ranking) cannot be proved from
``ranking_clicks_monthly``'s candidates: the threshold search gives up and every group of the range
is summed (the full ranking: 845k monthly roll-up rows for a year by employee, ~760 ms at 100,000
employees). With one row per year and key, a page of a calendar year reads the rows from the
cursor's count down, a few ``bucket`` s at a time, highest first (``queries``/``ranking.year_page``).

``bucket`` is an eighth of an octave: 8 x floor(log2 clicks) + the three bits after the leading one
(``domain.yearly_bucket``), monotone in the count, so a bucket holds a few thousand groups at most
at 100,000 employees. ``clicks_counted`` itself is in no index: an update stays HOT unless it
crosses into the next eighth (an index on the count made every update a new index entry: +33 % on
the consumer's batch, measured). Rows are never at 0 (deleted), like the monthly list; fillfactor
70 likewise. The tenants with monthly stats get an ``aggregate_backfills`` marker; their reads keep
the other paths until ``advocacy metrics backfill`` fills the table. Expand-only.

Revision ID: 0015_ranking_clicks_yearly
Revises: 0014_ranking_clicks
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from advocacy_metrics.adapters.backfills import mark_tenants_sql

#: 0015's own copy of ``db.YEARLY_BUCKET_SQL`` as it was (a migration's text does not follow the code).
YEARLY_BUCKET_SQL = (
    "(8 * (length(ltrim(clicks_counted::bit(64)::text, '0')) - 1) "
    "+ ((clicks_counted << 3) >> (length(ltrim(clicks_counted::bit(64)::text, '0')) - 1)) - 8)::smallint"
)

revision: str = "0015_ranking_clicks_yearly"
down_revision: str | None = "0014_ranking_clicks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE ranking_clicks_yearly (
          tenant_id varchar NOT NULL,
          group_by varchar NOT NULL,
          year smallint NOT NULL,
          key varchar NOT NULL,
          clicks_counted bigint NOT NULL DEFAULT 0,
          bucket smallint GENERATED ALWAYS AS ({YEARLY_BUCKET_SQL}) STORED,
          PRIMARY KEY (tenant_id, group_by, year, key)
        ) WITH (fillfactor = 70)
        """
    )
    op.execute(
        "CREATE INDEX ix_ranking_clicks_yearly_top ON ranking_clicks_yearly (tenant_id, group_by, year, bucket DESC)"
    )
    op.execute(mark_tenants_sql("ranking_clicks_yearly", ("employee_monthly_stats", "content_monthly_stats")))


def downgrade() -> None:
    op.execute("DELETE FROM aggregate_backfills WHERE aggregate = 'ranking_clicks_yearly'")
    op.execute("DROP TABLE ranking_clicks_yearly")
