"""Erasure tombstones in sharing (issue 13): keyed, with a random key made once here.

``erasures`` holds one keyed tombstone per erased person (advocacy_common.tombstones), so a request
or an event about them that arrives after the erasure is refused or dropped; ``service_secrets``
holds the key every replica reads. Expand-only: two new tables, nothing else changes.

Revision ID: 0009_erasure_tombstones
Revises: 0008_share_eligibility
"""

from __future__ import annotations

from collections.abc import Sequence

from advocacy_common.migrations import add_erasure_tombstones

revision: str = "0009_erasure_tombstones"
down_revision: str | None = "0008_share_eligibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_erasure_tombstones()  # also writes them out under --sql (offline: nothing to inspect)


def downgrade() -> None:
    pass  # the key and the tombstones stay: they must still be found after a re-upgrade
