"""Partners as principals (issue 13, item 4): ``partners``, and a ``partner_id`` on conversion secrets
and conversions, so each partner has its own secrets and ``external_id`` space.

Expand-only: the new columns default to ``'default'`` (what code without partners inserts lands in
the tenant's default partner), every tenant that has secrets or conversions gets its ``default``
partner, and ``uq_conversion_external_id`` keeps its name and widens to (tenant, partner,
external_id): code without partners still finds its constraint for ``ON CONFLICT``, and only ever
writes the default partner's rows, so its deduplication is unchanged.

Revision ID: 0006_partners
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_partners"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("tenant_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    for table in ("conversion_secrets", "conversions"):
        op.add_column(table, sa.Column("partner_id", sa.String(), nullable=False, server_default="default"))
    op.execute(
        "INSERT INTO partners (tenant_id, id, name, created_at) "
        "SELECT tenant_id, 'default', 'Default partner', now() FROM "
        "(SELECT tenant_id FROM conversion_secrets UNION SELECT tenant_id FROM conversions) t "
        "ON CONFLICT DO NOTHING"
    )
    # Widened in one transaction: no moment without the constraint.
    op.drop_constraint("uq_conversion_external_id", "conversions", type_="unique")
    op.create_unique_constraint("uq_conversion_external_id", "conversions", ["tenant_id", "partner_id", "external_id"])


def downgrade() -> None:
    op.drop_constraint("uq_conversion_external_id", "conversions", type_="unique")
    op.create_unique_constraint("uq_conversion_external_id", "conversions", ["tenant_id", "external_id"])
    for table in ("conversions", "conversion_secrets"):
        op.drop_column(table, "partner_id")
    op.drop_table("partners")
