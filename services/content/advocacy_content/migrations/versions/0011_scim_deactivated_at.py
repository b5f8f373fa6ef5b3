"""When a SCIM user was deactivated (issue 17): the tenant policy "erase after N days inactive" counts
from it. Expand-only: a nullable column and a partial index; rows deactivated before this revision
count from the revision (their ``updated_at`` is the best guess there is).

Revision ID: 0011_scim_deactivated_at
Revises: 0010_standard_webhooks
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_scim_deactivated_at"
down_revision: str | None = "0010_standard_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("scim_users", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE scim_users SET deactivated_at = updated_at WHERE NOT active")
    op.create_index(
        "ix_scim_users_deactivated", "scim_users", ["deactivated_at"], postgresql_where=sa.text("NOT active")
    )


def downgrade() -> None:
    op.drop_index("ix_scim_users_deactivated", table_name="scim_users")
    op.drop_column("scim_users", "deactivated_at")
