"""Shares (tracked links), and the copies of content, policy and settings kept from content's events
(a share is made against them; a member's erasure arrives there too)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common import policycheck
from advocacy_common.auth import Principal
from advocacy_common.db import table_of
from advocacy_common.errors import NotFound, Unprocessable
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import (
    ContentArchived,
    ContentExpired,
    ContentPublished,
    ContentUpdated,
    MemberErased,
    MemberProvisioned,
    MemberUpdated,
    PolicyUpdated,
    TenantSettingsUpdated,
    WaveUpdated,
)
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.networks import Network
from advocacy_common.outbox import add_event
from advocacy_common.pagination import PageParams, as_str, as_time, encode_cursor, parse_cursor
from advocacy_common.policy import EMPTY_POLICY, Policy
from advocacy_common.tenant_store import apply_tenant_settings
from advocacy_sharing import domain
from advocacy_sharing.db import Account, Click, ContentCopy, Conversion, PolicyCopy, Share
from advocacy_sharing.features import eligibility
from advocacy_sharing.features.erasure import forget_copies, refuse_erased
from advocacy_sharing.schemas import ShareCreate
from advocacy_sharing.settings import SOURCE


@dataclass(frozen=True, slots=True)
class ShareResult:
    share: Share
    created: bool
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class AuthenticityRule:
    min_colleagues: int = 3
    similarity: float = 0.85


async def load_policy(session: AsyncSession, tenant_id: str) -> Policy:
    row = await session.get(PolicyCopy, tenant_id)
    if row is None:
        return EMPTY_POLICY
    return Policy.from_event(PolicyUpdated.model_validate(row.body))


async def _find_share(session: AsyncSession, who: Principal, content_id: str, network: str) -> Share | None:
    return (
        await session.scalars(
            select(Share).where(
                Share.tenant_id == who.tenant_id,
                Share.employee_id == who.sub,
                Share.content_id == content_id,
                Share.network == network,
            )
        )
    ).first()


async def create_share(
    session: AsyncSession,
    who: Principal,
    body: ShareCreate,
    *,
    link_template: str,
    creator_visitor: str | None = None,
    authenticity: AuthenticityRule | None = None,
    now: datetime | None = None,
) -> ShareResult:
    """The same content on the same network again returns the existing share (created=False).

    ``link_template`` is the public link with a placeholder code of the real length: the policy
    judges the message with the link that will be appended to it.
    """
    now = now or datetime.now(UTC)
    await refuse_erased(session, who)  # 403 erased: a tombstone, issue 13
    content = await session.get(ContentCopy, (who.tenant_id, body.content_id))
    if content is None or content.status not in ("published", "expired"):
        raise NotFound("content not found or not published")
    # 403 unless it is on the sharer's board (and they are active in the directory); their team
    team = await eligibility.check(session, who, content, now)
    existing = await _find_share(session, who, body.content_id, body.network.value)
    if existing is not None:
        return ShareResult(existing, False, [])
    if body.message is not None:
        policy = await load_policy(session, who.tenant_id)
        violations = await policycheck.check(policy, body.network, body.message, link=link_template)
        if violations:
            raise Unprocessable(
                "the message breaks the sharing policy",
                code="policy_violation",
                details=[v.as_dict() for v in violations],
            )
    account = await session.get(Account, (who.tenant_id, who.sub, body.network.value))
    share = Share(
        id=str(uuid.uuid4()),
        tenant_id=who.tenant_id,
        code=domain.new_code(),
        employee_id=who.sub,
        employee_name=who.name,
        team=team,
        content_id=body.content_id,
        network=body.network.value,
        message=body.message,
        created_at=now,
        creator_visitor=creator_visitor,
        audience_size=account.audience_size if account else 0,
    )
    inserted = await session.execute(
        pg_insert(Share)
        .values(**share.model_dump())
        .on_conflict_do_nothing(constraint="uq_share_per_network")
        .returning(col(Share.id))
    )
    if inserted.first() is None:  # a concurrent request created it first
        again = await _find_share(session, who, body.content_id, body.network.value)
        assert again is not None
        return ShareResult(again, False, [])
    event = ShareCreated(
        share_id=share.id,
        employee_id=who.sub,
        content_id=share.content_id,
        network=share.network,
        code=share.code,
        created_at=now,
        employee_name=who.name,
        team=team,
        audience_size=share.audience_size,
    )
    await add_event(session, new_event(SOURCE, who.tenant_id, event, at=now))
    warnings = await _authenticity_warnings(session, share, authenticity or AuthenticityRule())
    return ShareResult(share, True, warnings)


async def _authenticity_warnings(session: AsyncSession, share: Share, rule: AuthenticityRule) -> list[str]:
    if not share.message or not domain.message_words(share.message):
        return []
    others = (
        await session.scalars(
            select(col(Share.message))
            .where(
                Share.tenant_id == share.tenant_id,
                Share.content_id == share.content_id,
                col(Share.message).is_not(None),
                Share.id != share.id,
                sa.or_(col(Share.employee_id).is_(None), col(Share.employee_id) != share.employee_id),
            )
            .order_by(col(Share.created_at).desc())
            .limit(2000)
        )
    ).all()
    n = domain.near_identical_count(share.message, [m for m in others if m], rule.similarity)
    if n >= rule.min_colleagues:
        return [domain.AUTHENTICITY_WARNING.format(n=n)]
    return []


async def list_shares(
    session: AsyncSession,
    who: Principal,
    page: PageParams,
    *,
    employee_id: str | None = None,
    content_id: str | None = None,
    network: Network | None = None,
) -> tuple[list[Share], str | None]:
    """An employee sees their own shares; an admin all of the tenant's, filterable. Newest first."""
    q = select(Share).where(Share.tenant_id == who.tenant_id)
    if not who.is_admin:
        q = q.where(Share.employee_id == who.sub)
    elif employee_id is not None:
        q = q.where(Share.employee_id == employee_id)
    if content_id is not None:
        q = q.where(Share.content_id == content_id)
    if network is not None:
        q = q.where(Share.network == network.value)
    if page.cursor is not None:
        at, sid = parse_cursor(page.cursor, as_time, as_str)
        q = q.where(sa.tuple_(col(Share.created_at), col(Share.id)) < sa.tuple_(sa.literal(at), sa.literal(sid)))
    q = q.order_by(col(Share.created_at).desc(), col(Share.id).desc()).limit(page.limit + 1)
    rows = list((await session.scalars(q)).all())
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        last = rows[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return rows, next_cursor


# -- content's events -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContentChange:
    """What the link cache must learn after a content event commits."""

    tenant_id: str
    content_id: str
    status: str
    expires_at: datetime | None
    url: str | None = None
    slug: str | None = None


def content_change(env: Envelope[Any]) -> ContentChange | None:
    d = env.data
    if isinstance(d, ContentPublished):
        return ContentChange(env.tenant_id, d.content_id, "published", d.expires_at, d.url, d.slug)
    if isinstance(d, ContentUpdated):
        return ContentChange(env.tenant_id, d.content_id, d.status, d.expires_at, d.url, d.slug)
    if isinstance(d, ContentExpired):
        return ContentChange(env.tenant_id, d.content_id, "expired", None)
    if isinstance(d, ContentArchived):
        return ContentChange(env.tenant_id, d.content_id, "archived", None)
    return None


async def _upsert_copy(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = pg_insert(ContentCopy).values(**values)
    table = table_of(ContentCopy)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "content_id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("tenant_id", "content_id")},
            where=table.c.updated_at <= stmt.excluded.updated_at,
        )
    )


async def apply_content_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    for env in events:
        data = env.data
        if isinstance(data, ContentPublished | ContentUpdated):
            await _upsert_copy(
                session,
                {
                    "tenant_id": env.tenant_id,
                    "content_id": data.content_id,
                    "title": data.title,
                    "url": data.url,
                    "slug": data.slug,
                    "status": "published" if isinstance(data, ContentPublished) else data.status,
                    "expires_at": data.expires_at,
                    "audience": data.audience.model_dump(mode="json"),
                    "updated_at": env.time,
                },
            )
        elif isinstance(data, ContentExpired | ContentArchived):
            status = "expired" if isinstance(data, ContentExpired) else "archived"
            await session.execute(
                sa.update(ContentCopy)
                .where(col(ContentCopy.tenant_id) == env.tenant_id, col(ContentCopy.content_id) == data.content_id)
                .values(status=status, updated_at=env.time)
            )
        elif isinstance(data, PolicyUpdated):
            stmt = pg_insert(PolicyCopy).values(
                tenant_id=env.tenant_id,
                version=data.version,
                body=data.model_dump(mode="json"),
                updated_at=data.updated_at,
            )
            table = table_of(PolicyCopy)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id"],
                    set_={
                        "version": stmt.excluded.version,
                        "body": stmt.excluded.body,
                        "updated_at": stmt.excluded.updated_at,
                    },
                    where=table.c.version <= stmt.excluded.version,
                )
            )
        elif isinstance(data, TenantSettingsUpdated):
            await apply_tenant_settings(session, [env])
        elif isinstance(data, MemberUpdated | MemberProvisioned | WaveUpdated):
            await eligibility.apply_events(session, [env])
        elif isinstance(data, MemberErased):
            await eligibility.forget_member(session, env.tenant_id, data.employee_id)
            await erase_member(session, env.tenant_id, data.employee_id)


async def erase_member(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Forget a person: accounts deleted; shares, clicks and conversions unlinked. Their links keep
    redirecting (a visitor did nothing wrong) but no longer credit anyone. A tombstone refuses their
    later shares; their outbox rows and audit entries are scrubbed (features.erasure)."""
    await forget_copies(session, tenant_id, employee_id)
    await session.execute(
        sa.delete(Account).where(col(Account.tenant_id) == tenant_id, col(Account.employee_id) == employee_id)
    )
    await session.execute(
        sa.update(Share)
        .where(col(Share.tenant_id) == tenant_id, col(Share.employee_id) == employee_id)
        .values(employee_id=None, employee_name=None, team=None, message=None, creator_visitor=None)
    )
    await session.execute(
        sa.update(Click)
        .where(col(Click.tenant_id) == tenant_id, col(Click.employee_id) == employee_id)
        .values(employee_id=None)
    )
    await session.execute(
        sa.update(Conversion)
        .where(col(Conversion.tenant_id) == tenant_id, col(Conversion.employee_id) == employee_id)
        .values(employee_id=None)
    )
