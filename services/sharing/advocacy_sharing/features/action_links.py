"""One-click sharing from a message (issue 18, ADR 0016): a button in a digest is a link signed by
notifications (:mod:`advocacy_common.action_links`); using it creates the share for the person it
names, through :func:`shares.create_share` (every check a share has: erasure, publication,
eligibility, the policy) and records the link's ``jti`` in the same transaction, so the link acts
once. The caller then sends the person to the network's share dialog with the tracked link.

Nothing here raises for a bad link: every way a link can fail is an :class:`Outcome` the page
explains (an expired, reused, altered or ineligible link is a page, not an error body).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import action_links
from advocacy_common.auth import Principal
from advocacy_common.auth.principal import EMPLOYEE
from advocacy_common.db import table_of
from advocacy_common.errors import AppError
from advocacy_sharing.db import ActionLinkUse, ContentCopy, Share
from advocacy_sharing.features import shares
from advocacy_sharing.schemas import ShareCreate

_USES = table_of(ActionLinkUse)


class Kind(StrEnum):
    shared = "shared"  # the share was made (or found: the person had shared it there already)
    used = "used"  # this link was used before
    expired = "expired"
    malformed = "malformed"  # not a link we made, or altered
    refused = "refused"  # a share's own check said no (ineligible, erased, no longer published...)


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    share: Share | None = None
    content: ContentCopy | None = None
    action: action_links.ShareAction | None = None
    # refused: the share's own error code and message (e.g. 403 not_in_audience)
    code: str | None = None
    message: str | None = None


def read(token: str, public_key: str | None, now: datetime) -> Outcome | action_links.ShareAction:
    """The action a link asks for, or why it asks for nothing (no database read). No key configured:
    no link is ours."""
    if public_key is None:
        return Outcome(Kind.malformed, message="share buttons are not configured here")
    try:
        return action_links.verify(public_key, token, now=now)
    except action_links.BadActionLink as e:
        kind = Kind.expired if e.reason is action_links.Refusal.expired else Kind.malformed
        return Outcome(kind, message=str(e))


async def preview(session: AsyncSession, token: str, *, public_key: str | None, now: datetime) -> Outcome:
    """What ``GET`` shows (it changes nothing: mail scanners fetch links): the item and network the
    link would share, or why it would not."""
    found = read(token, public_key, now)
    if isinstance(found, Outcome):
        return found
    used = await session.get(ActionLinkUse, (found.tenant_id, found.jti))
    content = await session.get(ContentCopy, (found.tenant_id, found.content_id))
    if used is not None:
        return Outcome(Kind.used, share=await session.get(Share, used.share_id), content=content, action=found)
    return Outcome(Kind.shared, content=content, action=found)


async def use(
    session: AsyncSession, token: str, *, public_key: str | None, link_template: str, now: datetime
) -> Outcome:
    """Act on a link once: create (or find) the share and record the ``jti``, in one savepoint, so a
    refused share records nothing and the link still works once the person may share."""
    found = read(token, public_key, now)
    if isinstance(found, Outcome):
        return found
    action = found
    content = await session.get(ContentCopy, (action.tenant_id, action.content_id))
    used = await session.get(ActionLinkUse, (action.tenant_id, action.jti))
    if used is not None:
        return Outcome(Kind.used, share=await session.get(Share, used.share_id), content=content, action=action)
    # the link stands for the person's login token: its team where a token's team claim stands
    who = Principal(sub=action.employee_id, tenant_id=action.tenant_id, roles=frozenset({EMPLOYEE}), team=action.team)
    try:
        async with session.begin_nested():
            result = await shares.create_share(
                session,
                who,
                ShareCreate(content_id=action.content_id, network=action.network),
                link_template=link_template,
                now=now,
            )
            recorded = await session.execute(
                pg_insert(ActionLinkUse)
                .values(
                    tenant_id=action.tenant_id,
                    jti=action.jti,
                    share_id=result.share.id,
                    used_at=now,
                    expires_at=action.expires_at,
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "jti"])
                .returning(_USES.c.jti)
            )
            if recorded.first() is None:  # the same link, used at the same moment by another request
                return Outcome(Kind.used, share=result.share, content=content, action=action)
    except AppError as e:
        return Outcome(Kind.refused, content=content, action=action, code=e.code, message=e.message)
    return Outcome(Kind.shared, share=result.share, content=content, action=action)


async def forget_expired(session: AsyncSession, now: datetime, *, limit: int = 10_000) -> int:
    """Delete the records of links past their expiry (a link past it is refused before its record
    is read): at most ``limit`` per call."""
    ids = sa.select(_USES.c.tenant_id, _USES.c.jti).where(_USES.c.expires_at < now).limit(limit)
    res = await session.execute(
        sa.delete(_USES).where(sa.tuple_(_USES.c.tenant_id, _USES.c.jti).in_(ids)).returning(_USES.c.jti)
    )
    return len(res.all())
