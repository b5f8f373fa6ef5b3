"""Erasure tombstones are keyed (issue 13): a random key, made once here, that every replica reads.

Tombstones written before this revision stay unkeyed SHA-256 hashes (the ids they hash are gone,
so they cannot be re-keyed); lookups check both forms.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO service_secrets (name, value) VALUES ('pseudonym_key', :value) ON CONFLICT DO NOTHING"
        ).bindparams(value=secrets.token_urlsafe(48))
    )


def downgrade() -> None:
    pass  # the key stays: tombstones written with it must still be found after a re-upgrade
