"""Erasure tombstones in sharing (issue 13): keyed, with a random key made once here.

``erasures`` holds one keyed tombstone per erased person (advocacy_common.tombstones), so a request
or an event about them that arrives after the erasure is refused or dropped; ``service_secrets``
holds the key every replica reads. Expand-only: two new tables, nothing else changes.

Revision ID: 0009_erasure_tombstones
Revises: 0008_share_eligibility
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_erasure_tombstones"
down_revision: str | None = "0008_share_eligibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())  # a downgrade leaves them in place
    if "erasures" not in existing:
        _create_tables()
    op.execute(
        sa.text(
            "INSERT INTO service_secrets (name, value) VALUES ('pseudonym_key', :value) ON CONFLICT DO NOTHING"
        ).bindparams(value=secrets.token_urlsafe(48))
    )


def _create_tables() -> None:
    op.create_table(
        "erasures",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("employee_hash", sa.Text(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "employee_hash"),
    )
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    pass  # the key and the tombstones stay: they must still be found after a re-upgrade
