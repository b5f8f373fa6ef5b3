"""One-click share buttons (issue 18, ADR 0016): a content copy keeps the networks its admin wrote a
caption for (``content_copies.networks``), the buttons a digest item carries. Expand-only: a new
column with a default; rows copied before it have none (a LinkedIn button, as the board offers).

Revision ID: 0008_content_networks
Revises: 0007_template_overrides
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_content_networks"
down_revision: str | None = "0007_template_overrides"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "content_copies", sa.Column("networks", sa.ARRAY(sa.Text()), nullable=False, server_default="{}")
    )


def downgrade() -> None:
    op.drop_column("content_copies", "networks")
