"""employee and content monthly roll-ups indexed in the summary's group order

A summary page by employee or content reads groups in code-point order (``COLLATE "C"``) after the
cursor's key. With an index in that order -- tenant, key, network (a group is a row per network),
month -- PostgreSQL streams the groups of a page off the index and stops at the page's end; without
one it aggregates and sorts the whole range for every page. Built ``CONCURRENTLY``: a live
deployment keeps writing while it builds.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 17:45:00
"""
from typing import Sequence, Union

from alembic import op


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INDEXES = (
    ('ix_employee_monthly_stats_pages', 'employee_monthly_stats', 'employee_id'),
    ('ix_content_monthly_stats_pages', 'content_monthly_stats', 'content_id'),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, key in INDEXES:
            op.execute(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} '
                f'ON {table} (tenant_id, {key} COLLATE "C", network, month)'
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, _table, _key in INDEXES:
            op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS {name}')
