"""The directory's language for a person (SCIM preferredLanguage, else locale), from content's
member.provisioned: their messages' language when they chose none (issue 18).

Expand-only: one nullable column.

Revision ID: 0009_directory_language
Revises: 0008_content_networks
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009_directory_language"
down_revision: str | None = "0008_content_networks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("directory_language", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    op.drop_column("members", "directory_language")
