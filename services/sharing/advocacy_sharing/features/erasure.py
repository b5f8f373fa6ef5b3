"""What sharing keeps after an erasure, and what it no longer keeps (issue 13).

- A keyed tombstone (:mod:`advocacy_common.tombstones`): a share by the person afterwards is refused
  (403, ``erased``), so their name cannot come back through a new share.
- Their outbox rows (``share.created`` with name and team, their clicks' events) are deleted, so a
  re-publication after a broker wipe does not send them again.
- Audit entries made by or about them keep what happened, not who.

The rows themselves (shares, clicks, conversions, accounts) are unlinked by ``shares.erase_member``;
later clicks and conversions on their links credit no one (the share has no employee any more).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit, erasure
from advocacy_common.auth import Principal
from advocacy_common.errors import Forbidden
from advocacy_sharing.adapters.tombstones import TOMBSTONES

ERASED_CODE = "erased"


async def refuse_erased(session: AsyncSession, who: Principal) -> None:
    """403 ``erased`` when the caller was erased (a token issued before, or an identity re-used).
    The person's erasure lock is held from here to the share's commit, so a share racing an
    erasure is either unlinked by it or refused (``Tombstones.hold``)."""
    if await TOMBSTONES.hold(session, who.tenant_id, who.sub):
        raise Forbidden("this person's data was erased: they can no longer share", code=ERASED_CODE)


async def forget_copies(session: AsyncSession, tenant_id: str, employee_id: str, at: datetime | None = None) -> None:
    """Tombstone, outbox and audit: the copies beside the rows ``erase_member`` unlinks."""
    await TOMBSTONES.add(session, tenant_id, employee_id, at or datetime.now(UTC))
    await erasure.scrub_outbox(session, tenant_id, employee_id)
    await audit.forget_person(session, tenant_id, employee_id)
