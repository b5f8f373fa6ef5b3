"""An erased employee id provisioned again (issue 17, "Leavers and rehires"): the SCIM user row notes
when the person was erased, so team sizes (``team.updated``) leave them out in one count. Expand-only:
a nullable column, NULL for every existing row (before this revision, re-provisioned erased people
were counted; the next change to their team recounts it).

Revision ID: 0012_scim_erased_rehires
Revises: 0011_scim_deactivated_at
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_scim_erased_rehires"
down_revision: str | None = "0011_scim_deactivated_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("scim_users", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("scim_users", "erased_at")
