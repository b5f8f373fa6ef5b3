"""The marker statement migrations 0013 and 0014 share (``backfills.mark_tenants_sql``) is, to the
letter, what they ran before it existed: they have run in production-like environments, and
``alembic --sql`` output must not change under them."""

from advocacy_metrics.adapters.backfills import mark_tenants_sql


def test_the_markers_are_the_statements_0013_and_0014_ran() -> None:
    assert mark_tenants_sql("adoption_steps", ("sharer_days", "member_facts", "directory_facts")) == (
        "INSERT INTO aggregate_backfills (tenant_id, aggregate) "
        "SELECT DISTINCT tenant_id, 'adoption_steps' FROM ("
        "SELECT tenant_id FROM sharer_days UNION SELECT tenant_id FROM member_facts "
        "UNION SELECT tenant_id FROM directory_facts) t "
        "ON CONFLICT DO NOTHING"
    )
    assert mark_tenants_sql("ranking_clicks", ("employee_monthly_stats", "content_monthly_stats")) == (
        "INSERT INTO aggregate_backfills (tenant_id, aggregate) "
        "SELECT DISTINCT tenant_id, 'ranking_clicks' FROM ("
        "SELECT tenant_id FROM employee_monthly_stats UNION SELECT tenant_id FROM content_monthly_stats) t "
        "ON CONFLICT DO NOTHING"
    )
