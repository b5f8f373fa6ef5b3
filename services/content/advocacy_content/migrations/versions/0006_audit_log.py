"""The audit log of admin actions (advocacy_common.audit, issue 13).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

from advocacy_common.migrations import add_audit_log, drop_audit_log

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_audit_log()


def downgrade() -> None:
    drop_audit_log()
