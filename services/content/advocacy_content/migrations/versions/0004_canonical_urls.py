"""Stored URLs in their canonical (WHATWG) form (issue 13).

Content URLs and the partner webhook URL in tenant settings are rewritten to
``advocacy_common.urls.canonical_url`` of what was stored. A URL now refused (credentials, a
backslash or ``@`` in the host part, control characters) is left as it was: sharing's redirect
canonicalises every URL before it sends anyone there and answers 410 for those.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from advocacy_common.urls import RefusedURL, canonical_url

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _canonical(url: str) -> str | None:
    try:
        out = canonical_url(url)
    except RefusedURL:
        return None
    return out if out != url else None


def upgrade() -> None:
    if op.get_context().as_sql:  # `migrate --sql`: a data migration has no SQL to print ahead of time
        op.execute("-- 0004: stored URLs are rewritten to their canonical form (run online: migrate)")
        return
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT tenant_id, id, url FROM content_items")).all()
    for tenant_id, item_id, url in rows:
        new = _canonical(url)
        if new is not None:
            conn.execute(
                sa.text("UPDATE content_items SET url = :url WHERE tenant_id = :t AND id = :id"),
                {"url": new, "t": tenant_id, "id": item_id},
            )
    settings = conn.execute(
        sa.text("SELECT tenant_id, settings->>'partner_webhook_url' FROM tenant_settings "
                "WHERE settings->>'partner_webhook_url' IS NOT NULL")
    ).all()
    for tenant_id, url in settings:
        new = _canonical(url)
        if new is not None:
            conn.execute(
                sa.text(
                    "UPDATE tenant_settings SET settings = jsonb_set(settings, '{partner_webhook_url}', to_jsonb(CAST(:url AS text))) "
                    "WHERE tenant_id = :t"
                ),
                {"url": new, "t": tenant_id},
            )


def downgrade() -> None:
    """Nothing to undo: the canonical form opens the same page as what was stored."""
