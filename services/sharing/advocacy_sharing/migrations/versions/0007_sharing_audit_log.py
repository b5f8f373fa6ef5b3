"""The audit log of admin actions in sharing (advocacy_common.audit, issue 13): partners and their
secrets, click invalidations.

Revision ID: 0007_sharing_audit_log
Revises: 0006_partners
"""

from __future__ import annotations

from collections.abc import Sequence

from advocacy_common.migrations import add_audit_log, drop_audit_log

revision: str = "0007_sharing_audit_log"
down_revision: str | None = "0006_partners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_audit_log()


def downgrade() -> None:
    drop_audit_log()
