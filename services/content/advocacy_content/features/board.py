"""The advocacy board: what an employee sees, in what order; and the admin's view of everything.

An employee sees published, unexpired items whose audience matches their team, department and
location (the company's directory's) and programme roles, once their roll-out wave has started and
unless they opted out: :func:`advocacy_common.eligibility.refusal`, which sharing's check runs too,
in SQL. Ordering (see :func:`domain.relevance`): not yet shared by them, in a topic they follow, new; then newest first.
The SQL below computes the same score as the domain function (an integration test holds them
together), so pagination is a plain keyset over (score, published_at, id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.auth.principal import Principal
from advocacy_common.db import table_of
from advocacy_common.errors import Unprocessable
from advocacy_common.events import Envelope
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.networks import Network
from advocacy_common.pagination import PageParams, as_int, as_str, as_time, encode_cursor, parse_cursor
from advocacy_content import domain
from advocacy_content.adapters.events import now
from advocacy_content.db import ContentItem, SharedContent
from advocacy_content.features.content import checked_public, to_public
from advocacy_content.features.members import gate_for, load_member, require_active, viewer_for
from advocacy_content.features.policy import current_policy
from advocacy_content.schemas import BoardPage


class BoardFilters:
    def __init__(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        network: Network | None = None,
        topic: str | None = None,
        q: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        self.status = status
        self.tag = tag
        self.network = network
        self.topic = domain.normalize_topics([topic])[0] if topic and topic.strip() else None
        self.q = q.strip() if q and q.strip() else None
        # these items only (a client's titles for ids it holds, one read): at most a page of them
        self.ids = tuple(dict.fromkeys(ids)) if ids is not None else None


def _audience(name: str) -> Any:
    return col(ContentItem.audience)[name]


def _untargeted(name: str) -> Any:
    return sa.func.coalesce(sa.func.jsonb_array_length(_audience(name)), 0) == 0


def _one_of(name: str, value: str | None) -> Any:
    """The audience's ``name`` list is empty (everyone) or holds ``value``; without a value (the
    directory gives the person no department, say), only the empty list."""
    if not value:
        return _untargeted(name)
    return sa.or_(_untargeted(name), _audience(name).contains([value]))


def _text_array(values: list[str]) -> Any:
    return sa.cast(sa.literal(values, ARRAY(sa.Text)), ARRAY(sa.Text))


def _filtered(stmt: Any, f: BoardFilters) -> Any:
    if f.tag:
        stmt = stmt.where(col(ContentItem.tags).contains([f.tag]))
    if f.network:
        stmt = stmt.where(col(ContentItem.captions).has_key(str(f.network)))  # type: ignore[attr-defined]
    if f.topic:
        stmt = stmt.where(_audience("topics").contains([f.topic]))
    if f.q:
        stmt = stmt.where(col(ContentItem.search).op("@@")(sa.func.websearch_to_tsquery("simple", f.q)))
    if f.ids is not None:
        stmt = stmt.where(col(ContentItem.id).in_(f.ids))
    return stmt


async def admin_board(
    session: AsyncSession, who: Principal, page: PageParams, f: BoardFilters, *, link_sample: str | None
) -> BoardPage:
    """Everything of the tenant, newest first, with each caption's policy issues."""
    stmt = select(ContentItem).where(ContentItem.tenant_id == who.tenant_id)
    if f.status:
        stmt = stmt.where(ContentItem.status == f.status)
    stmt = _filtered(stmt, f)
    order_ts = sa.func.coalesce(col(ContentItem.published_at), col(ContentItem.created_at))
    if page.cursor:
        ts, cid = parse_cursor(page.cursor, as_time, as_str)
        stmt = stmt.where(sa.tuple_(order_ts, col(ContentItem.id)) < sa.tuple_(sa.literal(ts), sa.literal(cid)))
    stmt = stmt.order_by(order_ts.desc(), col(ContentItem.id).desc()).limit(page.limit + 1)
    items = list((await session.scalars(stmt)).all())
    cursor = None
    if len(items) > page.limit:
        items = items[: page.limit]
        last = items[-1]
        cursor = encode_cursor([(last.published_at or last.created_at).isoformat(), last.id])
    policy, _ = await current_policy(session, who.tenant_id)
    return BoardPage(items=await checked_public(items, policy, link_sample), next_cursor=cursor)


async def employee_board(session: AsyncSession, who: Principal, page: PageParams, f: BoardFilters) -> BoardPage:
    standing = await require_active(session, who)
    member = await load_member(session, who.tenant_id, who.sub)
    gate = await gate_for(session, who, member, standing)
    if not gate.open:
        return BoardPage(items=[], next_cursor=None, notice=gate.notice)
    viewer = await viewer_for(session, who, member, standing)
    at = ref = now()  # ref: what "new" is measured from; kept across the pages of one listing
    if page.cursor:
        c_score, c_ts, c_id, ref = parse_cursor(page.cursor, as_int, as_time, as_str, as_time)
    published = sa.func.coalesce(col(ContentItem.published_at), col(ContentItem.created_at))
    shared = sa.exists().where(
        col(SharedContent.tenant_id) == col(ContentItem.tenant_id),
        col(SharedContent.employee_id) == who.sub,
        col(SharedContent.content_id) == col(ContentItem.id),
    )
    topics = sorted(viewer.topics)
    followed: Any = _audience("topics").has_any(_text_array(topics)) if topics else sa.false()
    new = published > sa.literal(ref - domain.NEW_FOR)
    score = (
        sa.case((shared, 0), else_=4)
        + sa.case((sa.func.coalesce(followed, sa.false()), 2), else_=0)
        + sa.case((new, 1), else_=0)
    )
    stmt = select(ContentItem, shared.label("shared"), score.label("score")).where(
        ContentItem.tenant_id == who.tenant_id,
        ContentItem.status == domain.Status.published,
        sa.or_(col(ContentItem.expires_at).is_(None), col(ContentItem.expires_at) > at),
    )
    # eligibility.audience_matches in SQL (tests/integration/test_content_targeting.py holds them together)
    roles_ok = _untargeted("programme_roles")
    if viewer.programme_roles:
        roles_ok = sa.or_(roles_ok, _audience("programme_roles").has_any(_text_array(sorted(viewer.programme_roles))))
    stmt = stmt.where(
        _one_of("teams", viewer.team),
        _one_of("departments", viewer.department),
        _one_of("locations", viewer.location),
        roles_ok,
    )
    stmt = _filtered(stmt, f)
    item_id = col(ContentItem.id).collate("C")  # code point order, as domain.board_order_key
    if page.cursor:
        stmt = stmt.where(
            sa.tuple_(score, published, item_id) < sa.tuple_(sa.literal(c_score), sa.literal(c_ts), sa.literal(c_id))
        )
    stmt = stmt.order_by(score.desc(), published.desc(), item_id.desc()).limit(page.limit + 1)
    rows = (await session.execute(stmt)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    items = []
    for item, was_shared, _ in rows:
        rel = domain.relevance(
            published_at=item.published_at or item.created_at,
            topics=item.audience.get("topics") or (),
            viewer=viewer,
            shared=bool(was_shared),
            now=ref,
        )
        items.append(to_public(item, relevance=rel))
    cursor = None
    if more:
        last, _, last_score = rows[-1]
        cursor = encode_cursor(
            [int(last_score), (last.published_at or last.created_at).isoformat(), last.id, ref.isoformat()]
        )
    return BoardPage(items=items, next_cursor=cursor)


async def list_board(
    session: AsyncSession, who: Principal, page: PageParams, f: BoardFilters, *, link_sample: str | None
) -> BoardPage:
    """The board as ``who`` sees it: the admin's view of everything of the tenant, or the employee's.
    With ``ids``, only those of the items the same view holds (never another tenant's), all on one
    page: more ids than the page's ``limit`` is a 422."""
    if f.ids is not None and len(f.ids) > page.limit:
        raise Unprocessable.field("ids", f"at most limit ({page.limit}) ids")
    if who.is_admin:
        await require_active(session, who)
        return await admin_board(session, who, page, f, link_sample=link_sample)
    return await employee_board(session, who, page, f)


# Consumed: sharing's share.created, so the board can rank what an employee already shared lower.
_SHARED = table_of(SharedContent)


async def record_shares(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Remember that the employee shared the item (the board ranks it lower for them). Other event
    types on the topic are ignored."""
    rows: dict[tuple[str, str, str], Any] = {}
    for env in events:
        data = env.data
        if not isinstance(data, ShareCreated):
            continue
        key = (env.tenant_id, data.employee_id, data.content_id)
        rows.setdefault(key, data.created_at)
    if not rows:
        return
    values = [
        {"tenant_id": t, "employee_id": e, "content_id": c, "first_shared_at": at} for (t, e, c), at in rows.items()
    ]
    for start in range(0, len(values), 5000):
        await session.execute(pg_insert(_SHARED).values(values[start : start + 5000]).on_conflict_do_nothing())
