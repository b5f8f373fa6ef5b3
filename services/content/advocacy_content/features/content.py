"""Content item use cases: create, read, edit, archive. Load, apply the domain rules, save, and add
the events to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import policycheck
from advocacy_common.auth.principal import Principal
from advocacy_common.errors import Conflict, NotFound, Unprocessable
from advocacy_common.events.content import Audience, ContentArchived
from advocacy_common.policy import Policy
from advocacy_content import domain
from advocacy_content.adapters.events import emit, now, published_event, rule_error, updated_event
from advocacy_content.db import ContentItem
from advocacy_content.features.members import gate_for, load_member, require_active, viewer_for
from advocacy_content.features.policy import current_policy
from advocacy_content.schemas import (
    AudienceIn,
    ContentCreate,
    ContentPatch,
    ContentPublic,
    RelevanceOut,
    ViolationOut,
)


# -- captions -----------------------------------------------------------------------------------------
async def caption_reports(
    policy: Policy, items: Sequence[Mapping[str, str]], link_sample: str | None
) -> list[domain.CaptionReport]:
    """Each captions mapping judged, all in one trip to the process pool (a page of items too)."""
    found = iter(
        await policycheck.judge_many(policy, [m for c in items for m in domain.caption_messages(c, link_sample)])
    )
    return [
        domain.check_captions(policy, captions, link_sample, {name: next(found) for name in captions})
        for captions in items
    ]


async def check_captions_or_422(policy: Policy, captions: Mapping[str, str], link_sample: str | None) -> None:
    """A caption over its network's own limit is refused (422 naming ``captions.<network>``); policy
    issues are kept and shown to admins (:func:`checked_public`)."""
    (report,) = await caption_reports(policy, [captions], link_sample)
    if report.errors:
        details = [{"field": f"captions.{n}", "message": m} for n, m in report.errors.items()]
        raise Unprocessable("; ".join(f"{d['field']}: {d['message']}" for d in details), details=details)


def _issues(report: domain.CaptionReport) -> dict[str, list[ViolationOut]]:
    return {
        n: [ViolationOut(rule=v.rule, message=v.message, span=v.span) for v in vs] for n, vs in report.issues.items()
    }


def audience_doc(audience: AudienceIn) -> dict[str, list[str]]:
    return {
        "teams": list(dict.fromkeys(audience.teams)),
        "programme_roles": list(dict.fromkeys(audience.programme_roles)),
        "topics": domain.normalize_topics(audience.topics),
        "departments": list(dict.fromkeys(audience.departments)),
        "locations": list(dict.fromkeys(audience.locations)),
    }


async def checked_public(items: Sequence[ContentItem], policy: Policy, link_sample: str | None) -> list[ContentPublic]:
    """Items as staff read them: with each caption's policy issues (one trip to the pool for all)."""
    reports = await caption_reports(policy, [i.captions for i in items], link_sample)
    return [to_public(i, caption_issues=_issues(r)) for i, r in zip(items, reports, strict=True)]


def to_public(
    item: ContentItem,
    *,
    caption_issues: dict[str, list[ViolationOut]] | None = None,
    relevance: domain.Relevance | None = None,
) -> ContentPublic:
    out = ContentPublic.model_validate(item, from_attributes=True)
    # every dimension, as the events carry them: items stored before departments and locations lack them
    out.audience = Audience.model_validate(item.audience).model_dump()
    if caption_issues is not None:
        out.caption_issues = caption_issues
    if relevance is not None:
        out.relevance = RelevanceOut(
            new=relevance.new, followed_topic=relevance.followed_topic, shared=relevance.shared
        )
    return out


# -- use cases ----------------------------------------------------------------------------------------
async def create_content(
    session: AsyncSession,
    who: Principal,
    body: ContentCreate,
    *,
    link_sample: str | None,
    proposer: bool = False,
    note: str | None = None,
) -> tuple[ContentItem, Policy]:
    """An admin's item (published or scheduled), or with ``proposer`` an employee's suggestion."""
    at = now()
    try:
        domain.check_schedule(body.publish_at, body.expires_at, at)
    except domain.RuleError as e:
        raise rule_error(e) from e
    captions = {str(k): v for k, v in body.captions.items()}
    policy, _ = await current_policy(session, who.tenant_id)
    await check_captions_or_422(policy, captions, link_sample)
    status = domain.Status.pending_review if proposer else domain.initial_status(at, body.publish_at)
    item = ContentItem(
        id=str(uuid.uuid4()),
        tenant_id=who.tenant_id,
        title=body.title,
        url=body.url,
        slug=domain.slugify(body.title),
        body=body.body,
        tags=list(dict.fromkeys(body.tags)),
        captions=captions,
        audience=audience_doc(body.audience),
        status=status,
        publish_at=body.publish_at,
        expires_at=body.expires_at,
        published_at=at if status == domain.Status.published else None,
        created_by=who.sub,
        created_at=at,
        updated_at=at,
        proposer_id=who.sub if proposer else None,
        note=note,
    )
    session.add(item)
    if status == domain.Status.published:
        await emit(session, who.tenant_id, published_event(item), at)
    await session.flush()
    return item, policy


async def load_item(session: AsyncSession, tenant_id: str, content_id: str, *, for_update: bool = False) -> ContentItem:
    item = await session.get(ContentItem, content_id, with_for_update=for_update)
    if item is None or item.tenant_id != tenant_id:
        raise NotFound("content not found")
    return item


async def get_content(session: AsyncSession, who: Principal, content_id: str) -> ContentItem:
    """Admins read everything of their tenant; a proposer reads their own suggestion; an employee
    reads what the board would show them (published, unexpired, for their team, department, location
    and roles)."""
    standing = await require_active(session, who)
    item = await load_item(session, who.tenant_id, content_id)
    if who.is_admin or (item.proposer_id is not None and item.proposer_id == who.sub):
        return item
    if not domain.visible_on_board(item.status, item.expires_at, now()):
        raise NotFound("content not found")
    member = await load_member(session, who.tenant_id, who.sub)
    if not (await gate_for(session, who, member, standing)).open:  # opted out, or not rolled out to yet
        raise NotFound("content not found")
    if not domain.audience_matches(item.audience, await viewer_for(session, who, member, standing)):
        raise NotFound("content not found")
    return item


async def patch_content(
    session: AsyncSession, who: Principal, content_id: str, body: ContentPatch, *, link_sample: str | None
) -> tuple[ContentItem, Policy]:
    item = await load_item(session, who.tenant_id, content_id, for_update=True)
    if item.status not in domain.Status.EDITABLE:
        raise Conflict(f"{item.status} content cannot be edited")
    sent = body.model_fields_set
    at = now()
    for name in ("title", "url", "body", "tags"):
        if name in sent:
            value = getattr(body, name)
            if value is None and name != "body":
                raise Unprocessable.field(name, "cannot be null")
            setattr(item, name, list(dict.fromkeys(value)) if name == "tags" else value)
    if "title" in sent:
        item.slug = domain.slugify(item.title)
    if "captions" in sent:
        item.captions = {str(k): v for k, v in (body.captions or {}).items()}
    if "audience" in sent:
        item.audience = audience_doc(body.audience or AudienceIn())
    was = item.status
    if "publish_at" in sent:
        if was in (domain.Status.published, domain.Status.expired):
            raise Unprocessable.field("publish_at", "already published; publication time cannot change")
        item.publish_at = body.publish_at
    if "expires_at" in sent:
        item.expires_at = body.expires_at
    if {"publish_at", "expires_at"} & sent:
        start = item.publish_at if was not in domain.Status.ANNOUNCED else item.published_at
        try:
            domain.check_schedule(start, item.expires_at, at)
        except domain.RuleError as e:
            raise rule_error(e) from e
    policy, _ = await current_policy(session, who.tenant_id)
    if "captions" in sent:
        await check_captions_or_422(policy, item.captions, link_sample)
    if was == domain.Status.scheduled and (item.publish_at is None or item.publish_at <= at):
        item.status, item.published_at = domain.Status.published, at  # what the scheduler would do
    elif was == domain.Status.expired and "expires_at" in sent:
        item.status, item.expired_at = domain.Status.published, None  # the expiry moved: back on the board
    item.updated_at = at
    if was == domain.Status.scheduled and item.status == domain.Status.published:
        await emit(session, who.tenant_id, published_event(item), at)
    elif was in domain.Status.ANNOUNCED:
        await emit(session, who.tenant_id, updated_event(item), at)
    await session.flush()
    return item, policy


async def archive_content(session: AsyncSession, who: Principal, content_id: str) -> ContentItem:
    """Off the board for good; sharing stops redirecting (410). Archiving twice changes nothing."""
    item = await load_item(session, who.tenant_id, content_id, for_update=True)
    if item.status == domain.Status.archived:
        return item
    at = now()
    item.status, item.archived_at, item.updated_at = domain.Status.archived, at, at
    await emit(session, who.tenant_id, ContentArchived(content_id=item.id, archived_at=at), at)
    await session.flush()
    return item
