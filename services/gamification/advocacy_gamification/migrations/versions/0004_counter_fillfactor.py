"""counter tables keep room for updates (fillfactor 70)

Every consumed batch moves the same rows again (a person's badge counts and balance, a score's
head count, a person's daily cap count). None of these counters is indexed, so an update can stay
on its page (a HOT update: no new index entries) when the page has room; full pages (the default
fillfactor 100) sent every update to another page and into the primary key's index. (Window totals
cannot: their points are in the rank indexes.) As metrics' 0005 did for its aggregates. Applies to
pages written from now on; ``VACUUM FULL`` repacks existing ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:05:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ('member_stats', 'balances', 'score_counts', 'daily_counts')


def upgrade() -> None:
    for table in TABLES:
        op.execute(f'ALTER TABLE {table} SET (fillfactor = 70)')


def downgrade() -> None:
    for table in TABLES:
        op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
