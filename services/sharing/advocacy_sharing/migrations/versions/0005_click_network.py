"""The mail-scanner rules (issue 21): ``clicks.ip_network`` (the visitor's IPv4 /24 or IPv6 /48, never the
address) and ``clicks.accept_language`` (whether the request carried the header). Expand-only:
nullable columns (clicks judged before: NULL).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("clicks", sa.Column("ip_network", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column("clicks", sa.Column("accept_language", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("clicks", "accept_language")
    op.drop_column("clicks", "ip_network")
