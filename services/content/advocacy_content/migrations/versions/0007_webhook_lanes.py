"""webhook deliveries indexed for the per-endpoint claim (issue 12)

The deliverer lists the tenants with pending deliveries by skipping from one to the next on this
index, then reads each one's first due deliveries off it (advocacy_common.partner_feed._CLAIM), so
a claim costs what the number of such tenants costs, not one tenant's backlog. Expand-only, built
``CONCURRENTLY``: a live deployment keeps writing while it builds.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_lane"
            " ON webhook_deliveries (tenant_id, next_attempt_at, id) WHERE status = 'pending'"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_webhook_lane")
