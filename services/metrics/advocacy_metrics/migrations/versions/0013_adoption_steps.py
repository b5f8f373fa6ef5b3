"""adoption_steps: per-day net changes of the adoption counts; aggregate_backfills markers

The adoption report read every person's latest membership (and directory) record and the span's
sharer days, then joined them: ~190k rows and ~300 ms on 100,000 employees. Each count it returns
at ``as_of`` is a sum over people of a 0/1 function of the day that changes on a few days only
(``domain.adoption.steps``), so this table keeps, per tenant and day, the net change of each sum;
a count at ``as_of`` is the sum of the rows up to it (at most one row per day of the tenant's
life). A row exists only while a counter is non-zero. Fillfactor 70 as 0005 (the consumer moves
the same rows batch after batch).

``aggregate_backfills`` lists pending work per tenant and aggregate: the reads keep their old path
while a tenant has a marker, and ``advocacy metrics backfill`` fills the aggregate then deletes the
marker. Every tenant with facts gets an ``adoption_steps`` marker here (plain SQL: works under
``--sql``). Expand-only.

Revision ID: 0013_adoption_steps
Revises: 0012_conversion_pages
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from advocacy_metrics.adapters.backfills import mark_tenants_sql

revision: str = "0013_adoption_steps"
down_revision: str | None = "0012_conversion_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTERS = (
    "enrolled",
    "in_directory",
    "active",
    "active_enrolled",
    "active_in_directory",
    "week_enrolled",
    "week_in_directory",
    "month_enrolled",
    "month_in_directory",
)


def upgrade() -> None:
    counters = ", ".join(f"{c} integer NOT NULL DEFAULT 0" for c in COUNTERS)
    op.execute(
        f"CREATE TABLE adoption_steps (tenant_id varchar NOT NULL, day date NOT NULL, {counters}, "
        "PRIMARY KEY (tenant_id, day)) WITH (fillfactor = 70)"
    )
    op.execute(
        "CREATE TABLE IF NOT EXISTS aggregate_backfills (tenant_id varchar NOT NULL, aggregate varchar NOT NULL, "
        "PRIMARY KEY (tenant_id, aggregate))"
    )
    op.execute(mark_tenants_sql("adoption_steps", ("sharer_days", "member_facts", "directory_facts")))


def downgrade() -> None:
    op.execute("DROP TABLE aggregate_backfills")
    op.execute("DROP TABLE adoption_steps")
