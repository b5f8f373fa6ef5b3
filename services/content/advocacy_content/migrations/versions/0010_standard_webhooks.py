"""Standard Webhooks (issue 14): endpoints per partner, rotating secrets, an attempt log.

- ``webhook_endpoints``: several per tenant, each for a partner, with an event-type filter, a
  signature scheme and a disabled state (a 410 sets it); ``webhook_endpoint_secrets``: each
  endpoint's ``whsec_`` secrets, the previous one valid until its rotation's overlap ends;
  ``webhook_attempts``: every attempt's answer and latency (the delivery log).
- ``webhook_deliveries.endpoint_id``: the endpoint a delivery goes to; ``''`` (the default) is the
  tenant-wide ``partner_webhook_url`` of the release before, so its code, which does not know the
  column, keeps writing exactly what it wrote.
- One delivery per (tenant, endpoint, event) instead of per (tenant, event), so two endpoints of a
  tenant each get an event. The new unique index is built first; then the old constraint goes. Code
  of the release before only ever writes endpoint ``''``, for which the new index refuses exactly the
  duplicates the old constraint refused (its ``ON CONFLICT DO NOTHING`` names no constraint), so it
  runs unchanged during the roll-out: expand-only in effect.
- Indexes for the per-endpoint claim, replays by time range and the retention purge, built
  ``CONCURRENTLY`` (a live deployment keeps writing).

Revision ID: 0010_standard_webhooks
Revises: 0009_scim_directory
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0010_standard_webhooks"
down_revision: str | None = "0009_scim_directory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("endpoint_id", sa.Text(), server_default="", nullable=False))
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", ARRAY(sa.Text()), nullable=True),
        sa.Column("signature_scheme", sa.Text(), server_default="standard", nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_endpoints_tenant", "webhook_endpoints", ["tenant_id", "id"])
    op.create_table(
        "webhook_endpoint_secrets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("endpoint_id", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_endpoint_secrets", "webhook_endpoint_secrets", ["endpoint_id", "id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_webhook_endpoint_event"
            " ON webhook_deliveries (tenant_id, endpoint_id, event_id)"
        )
        op.execute("ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS uq_webhook_event")
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_endpoint_lane"
            " ON webhook_deliveries (tenant_id, endpoint_id, next_attempt_at, id) WHERE status = 'pending'"
        )
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_endpoint_created"
            " ON webhook_deliveries (tenant_id, endpoint_id, created_at)"
        )
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_created ON webhook_deliveries (created_at)")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for index in ("ix_webhook_created", "ix_webhook_endpoint_created", "ix_webhook_endpoint_lane"):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
    # Back to one delivery per (tenant, event): deliveries to endpoints go with their endpoints.
    op.execute("DELETE FROM webhook_deliveries WHERE endpoint_id <> ''")
    op.execute("ALTER TABLE webhook_deliveries ADD CONSTRAINT uq_webhook_event UNIQUE (tenant_id, event_id)")
    op.execute("DROP INDEX IF EXISTS uq_webhook_endpoint_event")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_endpoint_secrets")
    op.drop_table("webhook_endpoints")
    op.drop_column("webhook_deliveries", "endpoint_id")
