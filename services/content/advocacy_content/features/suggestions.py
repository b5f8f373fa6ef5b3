"""Employee suggestions: proposed content that admins approve (it becomes content, credited to the
proposer: ``content.suggestion_approved``) or reject with a reason the proposer reads
(``content.suggestion_rejected``). With the
tenant's ``second_approver_required``, two different admins must approve."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import audit
from advocacy_common.auth.principal import Principal
from advocacy_common.errors import Conflict, Unprocessable
from advocacy_common.events.content import SuggestionApproved, SuggestionRejected
from advocacy_common.pagination import PageParams, as_str, as_time, encode_cursor, parse_cursor
from advocacy_common.policy import Policy
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_content import domain
from advocacy_content.adapters.events import emit, now, published_event
from advocacy_content.db import ContentItem
from advocacy_content.features.content import create_content, load_item
from advocacy_content.features.members import require_active
from advocacy_content.features.policy import current_policy
from advocacy_content.schemas import RejectIn, SuggestionCreate

SUGGESTION_FILTERS = ("pending_review", "rejected", "approved", "all")


async def propose(
    session: AsyncSession, who: Principal, body: SuggestionCreate, *, link_sample: str | None
) -> tuple[ContentItem, Policy]:
    await require_active(session, who, writes=True)  # held to the commit: a racing erasure unlinks or refuses it
    return await create_content(session, who, body, link_sample=link_sample, proposer=True, note=body.note)


async def list_suggestions(
    session: AsyncSession, who: Principal, page: PageParams, *, status: str | None
) -> tuple[list[ContentItem], str | None, Policy]:
    """Admins: the tenant's suggestions, pending ones unless ``status`` says otherwise.
    Employees: their own, whatever their status (with the rejection reason)."""
    stmt = select(ContentItem).where(ContentItem.tenant_id == who.tenant_id)
    if who.is_admin:
        stmt = stmt.where(col(ContentItem.proposer_id).is_not(None) | (ContentItem.status == "pending_review"))
        wanted = status or "pending_review"
    else:
        stmt = stmt.where(ContentItem.proposer_id == who.sub)
        wanted = status or "all"
    if wanted == "approved":
        stmt = stmt.where(col(ContentItem.status).not_in([domain.Status.pending_review, domain.Status.rejected]))
    elif wanted != "all":
        stmt = stmt.where(ContentItem.status == wanted)
    if page.cursor:
        ts, cid = parse_cursor(page.cursor, as_time, as_str)
        stmt = stmt.where(
            (col(ContentItem.created_at) < ts) | ((col(ContentItem.created_at) == ts) & (col(ContentItem.id) < cid))
        )
    stmt = stmt.order_by(col(ContentItem.created_at).desc(), col(ContentItem.id).desc()).limit(page.limit + 1)
    items = list((await session.scalars(stmt)).all())
    cursor = None
    if len(items) > page.limit:
        items = items[: page.limit]
        cursor = encode_cursor([items[-1].created_at.isoformat(), items[-1].id])
    policy, _ = await current_policy(session, who.tenant_id)
    return items, cursor, policy


async def approve(session: AsyncSession, who: Principal, content_id: str) -> ContentItem:
    item = await load_item(session, who.tenant_id, content_id, for_update=True)
    settings = await load_tenant_settings(session, who.tenant_id)
    at = now()
    try:
        outcome = domain.approve(
            status=item.status,
            proposer_id=item.proposer_id,
            approvals=item.approvals,
            admin_id=who.sub,
            at=at,
            second_approver_required=settings.second_approver_required,
        )
    except domain.StateError as e:
        raise Conflict(str(e)) from e
    item.approvals = outcome.approvals
    item.updated_at = at
    approval = {"approvals": len(outcome.approvals), "approved": outcome.approved}
    await audit.record(
        session,
        who.tenant_id,
        who.sub,
        "suggestion.approved",
        target=item.id,
        before={"status": item.status},
        after=approval,
        at=at,
    )
    if not outcome.approved:
        await session.flush()
        return item  # waits for a second admin
    if item.expires_at is not None and item.expires_at <= at:
        raise Unprocessable.field("expires_at", "the suggestion's expiry has passed; change expires_at first")
    item.status = domain.initial_status(at, item.publish_at)
    item.reviewed_by, item.reviewed_at = who.sub, at
    if item.status == domain.Status.published:
        item.published_at = at
        await emit(session, who.tenant_id, published_event(item), at)
    if item.proposer_id is not None:
        await emit(
            session,
            who.tenant_id,
            SuggestionApproved(
                content_id=item.id, proposer_id=item.proposer_id, approved_by=who.sub, approved_at=at, title=item.title
            ),
            at,
        )
    await session.flush()
    return item


async def reject(session: AsyncSession, who: Principal, content_id: str, body: RejectIn) -> ContentItem:
    item = await load_item(session, who.tenant_id, content_id, for_update=True)
    if item.status != domain.Status.pending_review:
        raise Conflict(f"only a suggestion pending review can be rejected (it is {item.status})")
    at = now()
    await audit.record(
        session,
        who.tenant_id,
        who.sub,
        "suggestion.rejected",
        target=item.id,
        before={"status": item.status},
        after={"reason": body.reason.strip()},
        at=at,
    )
    item.status = domain.Status.rejected
    item.rejection_reason = body.reason.strip()
    item.reviewed_by, item.reviewed_at, item.updated_at = who.sub, at, at
    if item.proposer_id is not None:  # the proposer hears why (notifications)
        await emit(
            session,
            who.tenant_id,
            SuggestionRejected(
                content_id=item.id,
                proposer_id=item.proposer_id,
                title=item.title,
                rejected_by=who.sub,
                reason=item.rejection_reason,
                rejected_at=at,
            ),
            at,
        )
    await session.flush()
    return item
