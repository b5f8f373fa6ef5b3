"""Every bot verdict stores its reason (issue 21): ``clicks.reason`` (``ua_not_browser``,
``known_crawler:<source>``, ``preview_fetcher``, ``head_request``, ...). Expand-only: a nullable
column, so the previous release keeps writing clicks while this one rolls out (its rows: NULL).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("clicks", sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    op.drop_column("clicks", "reason")
