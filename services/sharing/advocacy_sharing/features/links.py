"""Links whose content URL the platform now refuses (issue 13, item 10).

A URL stored before URLs were canonical (advocacy_common.urls.canonical_url) may be one the rules now
refuse (credentials, a backslash in the authority, control characters...): its links answer 410
(domain.link_destination). The admin reads them here, with the reason, to fix or archive the content.

The rule is code, not SQL, so each page walks the tenant's content copies in id order, in batches,
and lists the shares of the refused ones, ordered by (content id, code) with byte order (``COLLATE
"C"``) so the cursor compares the way the rows are sorted. One page looks at most
:data:`MAX_SCANNED` content copies; a page cut short by that bound still carries a cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from advocacy_common.pagination import PageParams, as_str, encode_cursor, parse_cursor
from advocacy_common.urls import RefusedURL, canonical_url
from advocacy_sharing.db import ContentCopy, Share

#: Content copies read per query, and at most per page.
BATCH = 500
MAX_SCANNED = 20_000
#: Sorts after every link code (ASCII letters and digits) in byte order: "the rest of this content".
PAST_EVERY_CODE = "~"


def refusal(url: str) -> str | None:
    """Why the rules refuse ``url`` now, or None when its links still redirect."""
    try:
        canonical_url(url)
    except RefusedURL as e:
        return str(e)
    return None


@dataclass(frozen=True, slots=True)
class RefusedLink:
    code: str
    content_id: str
    network: str
    created_at: datetime
    reason: str


def _c(column: Any) -> sa.ColumnElement[str]:
    """``column`` compared and sorted in byte order."""
    return sa.collate(column, "C")


async def refused_links(
    session: AsyncSession, tenant_id: str, page: PageParams
) -> tuple[list[RefusedLink], str | None]:
    after_content, after_code = parse_cursor(page.cursor, as_str, as_str) if page.cursor else ("", "")
    found: list[RefusedLink] = []
    scanned = 0
    content_from = after_content  # content ids >= this are still to look at
    inclusive = True
    while len(found) <= page.limit and scanned < MAX_SCANNED:
        cid = _c(col(ContentCopy.content_id))
        copies = (
            await session.execute(
                sa.select(col(ContentCopy.content_id), col(ContentCopy.url))
                .where(
                    col(ContentCopy.tenant_id) == tenant_id, cid >= content_from if inclusive else cid > content_from
                )
                .order_by(cid)
                .limit(BATCH)
            )
        ).all()
        if not copies:
            break
        scanned += len(copies)
        reasons = {c: r for c, url in copies if (r := refusal(url)) is not None}
        if reasons:
            rows = (
                await session.execute(
                    sa.select(col(Share.code), col(Share.content_id), col(Share.network), col(Share.created_at))
                    .where(
                        col(Share.tenant_id) == tenant_id,
                        col(Share.content_id).in_(reasons),
                        sa.tuple_(_c(col(Share.content_id)), _c(col(Share.code)))
                        > sa.tuple_(_c(sa.literal(after_content)), _c(sa.literal(after_code))),
                    )
                    .order_by(_c(col(Share.content_id)), _c(col(Share.code)))
                    .limit(page.limit + 1 - len(found))
                )
            ).all()
            found += [RefusedLink(r.code, r.content_id, r.network, r.created_at, reasons[r.content_id]) for r in rows]
        content_from, inclusive = copies[-1].content_id, False
        if len(copies) < BATCH:
            break
    else:
        if len(found) <= page.limit:  # the scan bound cut this page short: go on from here next time
            return found, encode_cursor([content_from, PAST_EVERY_CODE])
    if len(found) > page.limit:
        found = found[: page.limit]
        return found, encode_cursor([found[-1].content_id, found[-1].code])
    return found, None
