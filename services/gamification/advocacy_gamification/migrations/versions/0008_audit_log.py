"""The audit log of admin actions (advocacy_common.audit, issue 13).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

from advocacy_common.migrations import add_audit_log, drop_audit_log

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_audit_log()


def downgrade() -> None:
    drop_audit_log()
