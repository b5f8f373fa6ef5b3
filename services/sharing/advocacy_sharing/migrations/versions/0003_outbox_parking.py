"""Outbox rows can be parked: a row the broker will never take is set aside with its reason
(advocacy_common.outbox, issue 12).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

from advocacy_common.migrations import add_outbox_parking, drop_outbox_parking

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_parking()


def downgrade() -> None:
    drop_outbox_parking()
