"""aggregate tables keep room for updates (fillfactor 70)

The consumer moves the same aggregate rows batch after batch (a person's day, their team's day...).
None of their counters is indexed, so an update can stay on its page (a HOT update: no new index
entries) when the page has room; full pages (the default fillfactor 100) sent every update to
another page and into every index. On the pipeline benchmark this cut the database's CPU per click
by about a third. Applies to pages written from now on; ``VACUUM FULL`` (or a rebuild) repacks
existing ones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:40:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = (
    'daily_stats',
    'team_daily_stats',
    'content_daily_stats',
    'network_daily_stats',
    'team_monthly_stats',
    'content_monthly_stats',
    'employee_monthly_stats',
    'daily_conversions',
    'network_daily_conversions',
    'team_monthly_conversions',
    'content_monthly_conversions',
    'dimension_daily_clicks',
    'dimension_daily_conversions',
    'adoption_days',
)


def upgrade() -> None:
    for table in TABLES:
        op.execute(f'ALTER TABLE {table} SET (fillfactor = 70)')


def downgrade() -> None:
    for table in TABLES:
        op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
