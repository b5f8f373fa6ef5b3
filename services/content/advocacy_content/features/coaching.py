"""Coaching: an employee asks coaches for private advice on a draft post. Only the requester, the
tenant's coaches and its admins read a thread; anyone else gets a 404 (its existence is private
too). A coach's reply publishes ``coaching.replied`` (ids and time, no text) so the requester is
told; nothing else is published: metrics never sees a thread."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import policycheck
from advocacy_common.auth.principal import Principal
from advocacy_common.errors import Conflict, Forbidden, NotFound, Unprocessable
from advocacy_common.events.content import CoachingReplied
from advocacy_common.networks import Network
from advocacy_common.pagination import PageParams, as_str, as_time, encode_cursor, parse_cursor
from advocacy_content import domain
from advocacy_content.adapters.events import emit, now
from advocacy_content.db import CoachingReply, CoachingRequest
from advocacy_content.features.members import refuse_erased
from advocacy_content.features.policy import current_policy
from advocacy_content.schemas import CoachingCreate, CoachingPublic, ReplyIn, ReplyPublic, ViolationOut

OPEN, CLOSED = "open", "closed"


def _public(r: CoachingRequest, *, reply_count: int = 0) -> CoachingPublic:
    return CoachingPublic(
        id=r.id,
        requester_id=r.requester_id,
        network=r.network,
        draft=r.draft,
        question=r.question,
        status=r.status,
        created_at=r.created_at,
        updated_at=r.updated_at,
        closed_at=r.closed_at,
        reply_count=reply_count,
    )


async def create_request(session: AsyncSession, who: Principal, body: CoachingCreate) -> CoachingPublic:
    await refuse_erased(session, who, hold=True)  # held to the commit: a racing erasure deletes or refuses it
    at = now()
    r = CoachingRequest(
        id=str(uuid.uuid4()),
        tenant_id=who.tenant_id,
        requester_id=who.sub,
        network=str(body.network),
        draft=body.draft,
        question=body.question,
        status=OPEN,
        created_at=at,
        updated_at=at,
    )
    session.add(r)
    await session.flush()
    return await _detail(session, r)


async def _readable(
    session: AsyncSession, who: Principal, request_id: str, *, for_update: bool = False
) -> CoachingRequest:
    r = await session.get(CoachingRequest, request_id, with_for_update=for_update)
    if (
        r is None
        or r.tenant_id != who.tenant_id
        or not domain.can_read_coaching(requester_id=r.requester_id, viewer_id=who.sub, roles=who.roles)
    ):
        raise NotFound("coaching request not found")
    return r


async def _detail(session: AsyncSession, r: CoachingRequest) -> CoachingPublic:
    replies = (
        await session.scalars(
            select(CoachingReply)
            .where(CoachingReply.request_id == r.id)
            .order_by(col(CoachingReply.created_at), col(CoachingReply.id))
        )
    ).all()
    out = _public(r, reply_count=len(replies))
    out.replies = [ReplyPublic.model_validate(x, from_attributes=True) for x in replies]
    policy, _ = await current_policy(session, r.tenant_id)
    try:
        network = Network(r.network)
    except ValueError:
        return out
    out.violations = [
        ViolationOut(rule=v.rule, message=v.message, span=v.span)
        for v in await policycheck.check(policy, network, r.draft)
    ]
    return out


async def get_request(session: AsyncSession, who: Principal, request_id: str) -> CoachingPublic:
    return await _detail(session, await _readable(session, who, request_id))


async def list_requests(
    session: AsyncSession, who: Principal, page: PageParams, *, status: str | None
) -> tuple[list[CoachingPublic], str | None]:
    """The requester: their own threads. Coaches and admins: the tenant's threads (open ones unless
    ``status`` says otherwise), their own included."""
    stmt = select(CoachingRequest).where(CoachingRequest.tenant_id == who.tenant_id)
    staff = who.has_any_role("coach", "admin")
    if staff:
        wanted = status or OPEN
    else:
        stmt = stmt.where(CoachingRequest.requester_id == who.sub)
        wanted = status or "all"
    if wanted != "all":
        stmt = stmt.where(CoachingRequest.status == wanted)
    if page.cursor:
        ts, rid = parse_cursor(page.cursor, as_time, as_str)
        stmt = stmt.where(
            (col(CoachingRequest.created_at) < ts)
            | ((col(CoachingRequest.created_at) == ts) & (col(CoachingRequest.id) < rid))
        )
    stmt = stmt.order_by(col(CoachingRequest.created_at).desc(), col(CoachingRequest.id).desc()).limit(page.limit + 1)
    rows = list((await session.scalars(stmt)).all())
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor([rows[-1].created_at.isoformat(), rows[-1].id])
    counts: dict[str, int] = {}
    # a second statement, not one snapshot: a list's reply count is a hint (the thread counts its own)
    if rows:
        result = await session.execute(
            sa.select(col(CoachingReply.request_id), sa.func.count())
            .where(col(CoachingReply.request_id).in_([r.id for r in rows]))
            .group_by(col(CoachingReply.request_id))
        )
        counts = {rid: int(n) for rid, n in result.all()}
    return [_public(r, reply_count=counts.get(r.id, 0)) for r in rows], cursor


async def reply(session: AsyncSession, who: Principal, request_id: str, body: ReplyIn) -> CoachingPublic:
    # the author's erasure lock before the thread's row lock (the erasure's order): a racing erasure
    # of the author unlinks the reply or refuses it
    await refuse_erased(session, who, hold=True)
    r = await _readable(session, who, request_id, for_update=True)
    role = domain.coaching_reply_role(requester_id=r.requester_id, viewer_id=who.sub, roles=who.roles)
    if role is None:
        raise Forbidden("only the requester and coaches reply")
    if r.status != OPEN:
        raise Conflict("the thread is closed")
    at = now()
    reply_id = str(uuid.uuid4())
    session.add(
        CoachingReply(
            id=reply_id,
            tenant_id=r.tenant_id,
            request_id=r.id,
            author_id=who.sub,
            author_role=role,
            text=body.text,
            created_at=at,
        )
    )
    r.updated_at = at
    if role == "coach":  # the requester is told (their own replies tell nobody)
        data = CoachingReplied(
            request_id=r.id, reply_id=reply_id, requester_id=r.requester_id, coach_id=who.sub, replied_at=at
        )
        await emit(session, r.tenant_id, data, at)
    await session.flush()
    return await _detail(session, r)


async def close(session: AsyncSession, who: Principal, request_id: str) -> CoachingPublic:
    r = await _readable(session, who, request_id, for_update=True)
    if r.requester_id != who.sub:
        raise Forbidden("only the requester closes the thread")
    if r.status != CLOSED:
        at = now()
        r.status, r.closed_at, r.updated_at = CLOSED, at, at
        await session.flush()
    return await _detail(session, r)


def check_status_filter(status: str | None) -> None:
    if status is not None and status not in (OPEN, CLOSED, "all"):
        raise Unprocessable.field("status", "one of open, closed, all")
