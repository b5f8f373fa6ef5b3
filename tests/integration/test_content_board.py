"""The board query against a real database: same audience and order as the domain rules, across
pages; full-text search; share events from sharing push shared items down; erasure forgets."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from advocacy_common.auth.principal import Principal
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.errors import Forbidden, Unprocessable
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareCreated
from advocacy_common.migrations import upgrade
from advocacy_common.pagination import PageParams, decode_cursor
from advocacy_content import domain
from advocacy_content.db import CoachingReply, CoachingRequest, ContentItem, Member, PolicyVersion, SharedContent, Wave
from advocacy_content.features import board, coaching, members, policy, suggestions, waves
from advocacy_content.features.board import record_shares
from advocacy_content.schemas import (
    CoachingCreate,
    MembershipIn,
    PolicyIn,
    ReplyIn,
    SuggestionCreate,
    TopicsIn,
    WaveCreate,
)
from tests.support.helpers import eventually


@pytest.fixture
async def sm(new_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database)
    engine: AsyncEngine = make_engine(new_database)
    yield make_sessionmaker(engine)
    await engine.dispose()


def who(tenant: str, sub: str, *roles: str, team: str | None = None) -> Principal:
    return Principal(sub=sub, tenant_id=tenant, roles=frozenset(roles or ("employee",)), team=team, name=sub.title())


def content(
    tenant: str, n: int, *, published_at: datetime, teams: list[str], roles: list[str], topics: list[str], **kw: Any
) -> ContentItem:
    return ContentItem(
        id=f"c{n:03d}-{uuid.uuid4().hex[:6]}",
        tenant_id=tenant,
        title=kw.pop("title", f"Item {n}"),
        url=f"https://example.com/{n}",
        slug=f"item-{n}",
        body=kw.pop("body", None),
        audience={"teams": teams, "programme_roles": roles, "topics": topics},
        status=kw.pop("status", "published"),
        published_at=published_at,
        created_by="admin",
        created_at=published_at,
        updated_at=published_at,
        **kw,
    )


async def all_pages(sm: async_sessionmaker[AsyncSession], p: Principal, limit: int, **filters: Any) -> list[Any]:
    out: list[Any] = []
    cursor = None
    for _ in range(100):
        async with sm() as s, s.begin():
            page = await board.list_board(
                s,
                p,
                PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None),
                board.BoardFilters(**filters),
                link_sample=None,
            )
        out.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("pagination does not end")


async def test_board_matches_the_domain_audience_and_order_across_pages(sm: async_sessionmaker[AsyncSession]) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    rnd = random.Random(11)
    items = []
    for n in range(60):
        items.append(
            content(
                tenant,
                n,
                published_at=now - timedelta(hours=rnd.choice([1, 5, 30, 100, 200, 500])),
                teams=rnd.choice([[], [], ["sales"], ["support"], ["sales", "support"]]),
                roles=rnd.choice([[], [], ["champion"], ["sharer", "creator"]]),
                topics=rnd.choice([[], ["ai"], ["cars"], ["ai", "cars"], ["cooking"]]),
                expires_at=rnd.choice([None, None, None, now - timedelta(minutes=1), now + timedelta(days=1)]),
                status=rnd.choice(["published"] * 6 + ["scheduled", "archived", "expired"]),
            )
        )
    # items 0..59 of another tenant must never show
    other = [content(f"{tenant}-other", n, published_at=now, teams=[], roles=[], topics=[]) for n in range(60, 65)]
    alice = who(tenant, "alice", team="sales")
    async with sm() as s, s.begin():
        s.add_all(items + other)
        await members.put_topics(s, alice, TopicsIn(topics=["AI"]))
        await members.put_membership(s, alice, MembershipIn(enrolled=True, programme_roles=["sharer"]))
    shared_ids = {i.id for i in rnd.sample(items, 15)}
    events = [
        new_event(
            "/advocacy/sharing",
            tenant,
            ShareCreated(
                share_id=f"s{k}", employee_id="alice", content_id=cid, network="x", code=f"k{k}", created_at=now
            ),
        )
        for k, cid in enumerate(sorted(shared_ids))
    ]
    # another employee's share and an unrelated event type change nothing for alice
    events.append(
        new_event(
            "/advocacy/sharing",
            tenant,
            ShareCreated(
                share_id="sb", employee_id="bob", content_id=items[0].id, network="x", code="kb", created_at=now
            ),
        )
    )
    async with sm() as s, s.begin():
        await record_shares(s, events)
        await record_shares(s, events)  # a redelivery is harmless

    viewer = domain.Viewer(team="sales", programme_roles=frozenset({"sharer"}), topics=frozenset({"ai"}))
    expected = [
        i
        for i in items
        if domain.visible_on_board(i.status, i.expires_at, now) and domain.audience_matches(i.audience, viewer)
    ]

    def key(i: ContentItem) -> tuple[int, float, domain.Descending]:
        assert i.published_at is not None
        rel = domain.relevance(
            published_at=i.published_at, topics=i.audience["topics"], viewer=viewer, shared=i.id in shared_ids, now=now
        )
        return domain.board_order_key(rel.score, i.published_at, i.id)

    want = [i.id for i in sorted(expected, key=key)]
    got = await all_pages(sm, alice, limit=7)
    assert [i.id for i in got] == want
    assert len(want) > 10
    first = got[0].relevance
    assert first is not None and not first.shared
    assert all(g.relevance is not None and g.relevance.shared == (g.id in shared_ids) for g in got)


async def test_full_text_search_and_filters(sm: async_sessionmaker[AsyncSession]) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    a = content(
        tenant,
        1,
        published_at=now,
        teams=[],
        roles=[],
        topics=["ai"],
        title="Launching our robotics platform",
        tags=["launch"],
        captions={"x": "hi"},
    )
    b = content(
        tenant,
        2,
        published_at=now,
        teams=[],
        roles=[],
        topics=[],
        title="Quarterly results",
        body="Robotics revenue doubled",
    )
    c = content(tenant, 3, published_at=now, teams=[], roles=[], topics=[], title="Team offsite")
    async with sm() as s, s.begin():
        s.add_all([a, b, c])
    emp = who(tenant, "e", team="x")
    assert {i.id for i in await all_pages(sm, emp, 50, q="robotics")} == {a.id, b.id}
    assert {i.id for i in await all_pages(sm, emp, 50, q='"quarterly results"')} == {b.id}
    assert {i.id for i in await all_pages(sm, emp, 50, q="robotics -revenue")} == {a.id}
    assert {i.id for i in await all_pages(sm, emp, 50, tag="launch")} == {a.id}
    assert {i.id for i in await all_pages(sm, emp, 50, network="x")} == {a.id}
    assert {i.id for i in await all_pages(sm, emp, 50, topic="AI")} == {a.id}
    assert await all_pages(sm, emp, 50, q="' OR 1=1 --") == []


async def test_items_by_ids_are_the_callers_own_and_a_page_at_most(sm: async_sessionmaker[AsyncSession]) -> None:
    """``ids`` (a console's titles of its top content, one read): only items of the caller's tenant
    that the caller's view holds; another tenant's ids are left out, as unknown ones are; more ids
    than the page's limit is a 422."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    mine = [
        content(tenant, n, published_at=now - timedelta(minutes=n + 1), teams=[], roles=[], topics=[]) for n in range(3)
    ]
    archived = content(tenant, 3, published_at=now, teams=[], roles=[], topics=[], status="archived")
    elsewhere = content(tenant, 4, published_at=now - timedelta(seconds=30), teams=["support"], roles=[], topics=[])
    theirs = content(f"{tenant}-other", 5, published_at=now, teams=[], roles=[], topics=[])
    async with sm() as s, s.begin():
        s.add_all([*mine, archived, elsewhere, theirs])
    ids = [i.id for i in (*mine, archived, elsewhere, theirs)] + ["no-such-item"]
    admin = who(tenant, "boss", "admin")
    got = await all_pages(sm, admin, len(ids), ids=ids)
    # the admin's view: every status and audience of the tenant, newest first; never the other tenant's
    assert [i.id for i in got] == [archived.id, elsewhere.id, *(i.id for i in mine)]
    assert [i.title for i in got][-1] == "Item 2"
    assert await all_pages(sm, who(f"{tenant}-other", "boss", "admin"), len(ids), ids=[i.id for i in mine]) == []
    # an employee's: what their board shows (published, for their team)
    emp = who(tenant, "e", team="sales")
    assert [i.id for i in await all_pages(sm, emp, len(ids), ids=ids)] == [i.id for i in mine]
    assert await all_pages(sm, emp, 5, ids=[]) == []
    # one page holds them all: more ids than the limit is refused (duplicates count once)
    with pytest.raises(Unprocessable):
        await all_pages(sm, admin, 2, ids=[i.id for i in mine])
    assert len(await all_pages(sm, admin, 2, ids=[mine[0].id, mine[1].id, mine[0].id])) == 2


async def test_items_by_ids_are_what_the_board_shows_of_them(sm: async_sessionmaker[AsyncSession]) -> None:
    """The ``ids`` read is the board read of those items, field for field: the admin's with each
    caption's policy issues (as every admin read of an item), the employee's with relevance and no
    issues."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    admin, emp = who(tenant, "boss", "admin"), who(tenant, "e", team="sales")
    captions = [{"x": "All about the secret plan", "linkedin": "Fine"}, {"x": "Nothing to see"}, {}]
    items = [
        content(tenant, n, published_at=now - timedelta(minutes=n + 1), teams=[], roles=[], topics=[], captions=c)
        for n, c in enumerate(captions)
    ]
    async with sm() as s, s.begin():
        s.add_all(items)
        await policy.put_policy(s, admin, PolicyIn(blocked_terms=["secret"]))
    wanted = [items[0].id, items[2].id]
    for p in (admin, emp):
        board_read = [i for i in await all_pages(sm, p, 50) if i.id in wanted]
        assert len(board_read) == 2
        assert await all_pages(sm, p, len(wanted), ids=wanted) == board_read
    by_ids = {i.id: i for i in await all_pages(sm, admin, len(wanted), ids=wanted)}
    issues = by_ids[items[0].id].caption_issues
    assert issues is not None and [v.rule for v in issues["x"]] == ["blocked_term"] and "linkedin" not in issues
    assert by_ids[items[2].id].caption_issues == {}
    assert all(i.caption_issues is None for i in await all_pages(sm, emp, len(wanted), ids=wanted))


async def test_erasure_forgets_the_person(sm: async_sessionmaker[AsyncSession]) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    eve, admin, coach = who(tenant, "eve", team="sales"), who(tenant, "boss", "admin"), who(tenant, "cora", "coach")
    async with sm() as s, s.begin():
        await members.put_topics(s, eve, TopicsIn(topics=["ai"]))
        await members.put_membership(
            s, eve, MembershipIn(enrolled=True, programme_roles=["creator"], leaderboard="anonymous")
        )
        suggestion, _ = await suggestions.propose(
            s, eve, SuggestionCreate(title="My idea", url="https://example.com/i"), link_sample=None
        )
        thread = await coaching.create_request(
            s, eve, CoachingCreate(network="linkedin", draft="draft", question="ok?")
        )
        await coaching.reply(s, coach, thread.id, ReplyIn(text="looks good"))
        await waves.create_wave(
            s, admin, WaveCreate(name="pilot", starts_at=datetime.now(UTC), employees=["eve", "zed"])
        )
        # eve is also a coach, and answered zed's thread
        other = await coaching.create_request(
            s, who(tenant, "zed"), CoachingCreate(network="x", draft="d", question="q")
        )
        await coaching.reply(s, who(tenant, "eve", "coach"), other.id, ReplyIn(text="eve was here"))
        await record_shares(
            s,
            [
                new_event(
                    "/advocacy/sharing",
                    tenant,
                    ShareCreated(
                        share_id="s",
                        employee_id="eve",
                        content_id=suggestion.id,
                        network="x",
                        code="c",
                        created_at=datetime.now(UTC),
                    ),
                )
            ],
        )
        # eve became an admin later and changed the policy
        await policy.put_policy(s, who(tenant, "eve", "admin"), PolicyIn(blocked_terms=["secret"]))
    async with sm() as s, s.begin():
        await members.erase_member(s, admin, "eve")
    async with sm() as s:
        assert await s.get(Member, (tenant, "eve")) is None
        assert (
            await s.scalar(
                sa.select(sa.func.count()).select_from(SharedContent).where(SharedContent.tenant_id == tenant)
            )
        ) == 0
        assert await s.get(CoachingRequest, thread.id) is None
        assert (
            await s.scalar(
                sa.select(sa.func.count()).select_from(CoachingReply).where(CoachingReply.request_id == thread.id)
            )
        ) == 0
        assert await s.get(CoachingRequest, other.id) is not None  # someone else's thread stays
        kept = (await s.scalars(sa.select(CoachingReply).where(CoachingReply.request_id == other.id))).one()
        assert kept.author_id is None and kept.author_role == "coach"
        item = await s.get(ContentItem, suggestion.id)
        assert item is not None and item.proposer_id is None and item.created_by == members.ERASED
        wave = (await s.scalars(sa.select(Wave).where(Wave.tenant_id == tenant))).one()
        assert wave.employees == ["zed"]
        pv = (await s.scalars(sa.select(PolicyVersion).where(PolicyVersion.tenant_id == tenant))).one()
        assert pv.updated_by == members.ERASED
        erased = await s.scalar(
            sa.text("SELECT count(*) FROM outbox WHERE tenant_id = :t AND event_type = 'io.advocacy.member.erased.v1'"),
            {"t": tenant},
        )
        assert erased == 1


async def _waiting_for_a_lock(sm: async_sessionmaker[AsyncSession], pid: int) -> bool:
    """Whether the backend ``pid`` waits for an advisory lock (the person's erasure lock) right now."""
    async with sm() as s:
        return bool(
            await s.scalar(
                sa.text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :p AND locktype = 'advisory' AND NOT granted)"
                ),
                {"p": pid},
            )
        )


# A person's own writes: ``write(session, person, thread)`` writes on their behalf (a coach's reply
# goes to ``thread``, someone else's request that the test makes first).
async def _suggest(s: AsyncSession, p: Principal, _thread: str) -> None:
    await suggestions.propose(s, p, SuggestionCreate(title="Idea", url="https://example.com/i"), link_sample=None)


async def _ask(s: AsyncSession, p: Principal, _thread: str) -> None:
    await coaching.create_request(s, p, CoachingCreate(network="linkedin", draft="d", question="q"))


async def _reply(s: AsyncSession, p: Principal, thread: str) -> None:
    await coaching.reply(s, replace(p, roles=frozenset({"coach"})), thread, ReplyIn(text="looks good"))


async def _follow(s: AsyncSession, p: Principal, _thread: str) -> None:
    await members.put_topics(s, p, TopicsIn(topics=["ai"]))


async def _enrol(s: AsyncSession, p: Principal, _thread: str) -> None:
    await members.put_membership(s, p, MembershipIn(enrolled=True, programme_roles=["sharer"]))


async def _naming(s: AsyncSession, tenant: str, person: str) -> list[str]:
    """The content rows that name ``person`` (all of them go with the person's erasure)."""
    found = []
    for table, column in (
        (Member, Member.employee_id),
        (CoachingRequest, CoachingRequest.requester_id),
        (CoachingReply, CoachingReply.author_id),
        (ContentItem, ContentItem.proposer_id),
    ):
        n = await s.scalar(
            sa.select(sa.func.count()).select_from(table).where(table.tenant_id == tenant, column == person)
        )
        found += [table.__name__] * int(n or 0)
    return found


@pytest.mark.parametrize(
    "write", [_suggest, _ask, _reply, _follow, _enrol], ids=["suggestion", "request", "reply", "topics", "membership"]
)
async def test_a_write_racing_an_erasure_is_refused_or_undone(sm: async_sessionmaker[AsyncSession], write: Any) -> None:
    """Both orders of the race, with two real sessions (as sharing's shares, 7613a56), for every
    write a person makes on their own behalf: a write whose check ran just before an erasure
    committed, and whose row committed just after the erasure deleted or unlinked the person's
    rows, kept their id (or name: a member row). Holding the person's erasure lock, a write made
    while an erasure is uncommitted waits for it and is refused; an erasure started while a write is
    uncommitted waits for it and deletes or unlinks what it wrote."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admin = who(tenant, "boss", "admin")
    async with sm() as s, s.begin():  # a thread of someone else's, for a coach's reply
        thread = (
            await coaching.create_request(s, who(tenant, "rae"), CoachingCreate(network="x", draft="d", question="q"))
        ).id

    async def pid_of(s: AsyncSession) -> int:
        return int(await s.scalar(sa.select(sa.func.pg_backend_pid())) or 0)

    async with sm() as eraser, sm() as writer:  # the erasure first
        await eraser.begin()
        await members.erase_member(eraser, admin, "ann")
        await writer.begin()
        pid = await pid_of(writer)
        writing = asyncio.create_task(write(writer, who(tenant, "ann"), thread))
        await eventually(lambda: _waiting_for_a_lock(sm, pid), timeout=30, what="the write waiting")
        assert not writing.done()
        await eraser.commit()
        with pytest.raises(Forbidden, match="erased"):
            await asyncio.wait_for(writing, 30)
        await writer.rollback()
    async with sm() as eraser, sm() as writer:  # the write first
        await writer.begin()
        await write(writer, who(tenant, "bob"), thread)
        await eraser.begin()
        pid = await pid_of(eraser)
        erasing = asyncio.create_task(members.erase_member(eraser, admin, "bob"))
        await eventually(lambda: _waiting_for_a_lock(sm, pid), timeout=30, what="the erasure waiting")
        await writer.commit()
        await asyncio.wait_for(erasing, 30)
        await eraser.commit()
    async with sm() as s:
        assert await _naming(s, tenant, "ann") == []
        assert await _naming(s, tenant, "bob") == []  # deleted or unlinked by the erasure that waited
        assert await _naming(s, tenant, "rae") == ["CoachingRequest"]


async def test_the_proposer_and_the_requester_are_told(sm: async_sessionmaker[AsyncSession]) -> None:
    """A rejected suggestion publishes ``content.suggestion_rejected`` (proposer, title, reason) and
    an approved one names its title; a coach's reply publishes ``coaching.replied`` for the
    requester, the requester's own reply nothing. All in the transaction of the change (outbox)."""
    from advocacy_content.schemas import RejectIn

    tenant = f"t-{uuid.uuid4().hex[:8]}"
    eve, admin, coach = who(tenant, "eve", team="sales"), who(tenant, "boss", "admin"), who(tenant, "cora", "coach")
    async with sm() as s, s.begin():
        no, _ = await suggestions.propose(
            s, eve, SuggestionCreate(title="Weak idea", url="https://example.com/n"), link_sample=None
        )
        yes, _ = await suggestions.propose(
            s, eve, SuggestionCreate(title="Good idea", url="https://example.com/y"), link_sample=None
        )
        thread = await coaching.create_request(s, eve, CoachingCreate(network="linkedin", draft="d", question="q"))
    async with sm() as s, s.begin():
        await suggestions.reject(s, admin, no.id, RejectIn(reason="  off-brand  "))
        await suggestions.approve(s, admin, yes.id)
        await coaching.reply(s, eve, thread.id, ReplyIn(text="more context"))
        await coaching.reply(s, coach, thread.id, ReplyIn(text="looks good"))
    async with sm() as s:
        rows = (
            await s.execute(
                sa.text(
                    "SELECT event_type, key, convert_from(value, 'UTF8')::jsonb AS data FROM outbox"
                    " WHERE tenant_id = :t AND (event_type LIKE '%suggestion%' OR event_type LIKE '%coaching%')"
                    " ORDER BY id"
                ),
                {"t": tenant},
            )
        ).all()
    assert [r.event_type for r in rows] == [
        "io.advocacy.content.suggestion_rejected.v1",
        "io.advocacy.content.suggestion_approved.v1",
        "io.advocacy.coaching.replied.v1",
    ]
    rejected, approved, replied = (r.data for r in rows)
    assert (rejected["proposer_id"], rejected["title"], rejected["reason"]) == ("eve", "Weak idea", "off-brand")
    assert (approved["proposer_id"], approved["title"]) == ("eve", "Good idea")
    assert (replied["requester_id"], replied["coach_id"], replied["request_id"]) == ("eve", "cora", thread.id)
    assert rows[2].key == f"{tenant}:eve" and "text" not in replied  # private: no reply text
