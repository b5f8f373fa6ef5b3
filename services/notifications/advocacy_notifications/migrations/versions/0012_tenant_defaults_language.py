"""The tenant's default language moves into the tenant's defaults row (one concept, one row, one way
to read and write it: db.load_defaults / db.save_defaults).

Expand-only: ``tenant_defaults.language`` (nullable: English) is added and filled from
``tenant_languages``; that table stays, for the release before, and a trigger copies what that
release writes there into ``tenant_defaults`` while both run (a tenant's first row takes the
domain's defaults for the rest, as db.save_defaults does). A later contract migration drops the
trigger and the table once no replica of that release is left.

Revision ID: 0012_tenant_defaults_language
Revises: 0011_report_recipients
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012_tenant_defaults_language"
down_revision: str | None = "0011_report_recipients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The domain's defaults when a tenant's first row is its language (advocacy_notifications.domain:
# DEFAULT_FREQUENCY, DEFAULT_DIGEST_HOUR; the two others are the columns' server defaults). Written
# out: a migration must not change when the code's constants do.
_COPY = """
INSERT INTO tenant_defaults (tenant_id, digest_frequency, digest_hour, updated_at, language)
{source}
ON CONFLICT (tenant_id) DO UPDATE SET language = EXCLUDED.language
"""


def upgrade() -> None:
    op.add_column("tenant_defaults", sa.Column("language", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.execute(_COPY.format(source="SELECT tenant_id, 'weekly', 9, updated_at, language FROM tenant_languages"))
    op.execute(
        "CREATE FUNCTION tenant_languages_to_defaults() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        + _COPY.format(source="VALUES (NEW.tenant_id, 'weekly', 9, NEW.updated_at, NEW.language)")
        + "; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER tenant_languages_to_defaults AFTER INSERT OR UPDATE ON tenant_languages"
        " FOR EACH ROW EXECUTE FUNCTION tenant_languages_to_defaults()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tenant_languages_to_defaults ON tenant_languages")
    op.execute("DROP FUNCTION tenant_languages_to_defaults()")
    op.drop_column("tenant_defaults", "language")
