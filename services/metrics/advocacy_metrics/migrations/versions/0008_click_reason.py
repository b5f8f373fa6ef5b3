"""Click facts keep the reason of a bot verdict (issue 21), a fourth click dimension: metrics reports
clicks by verdict and reason. Clicks recorded before have none (the empty value).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("click_facts", sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    op.drop_column("click_facts", "reason")
