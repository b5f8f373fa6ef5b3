"""Re-announcing what decides a board (issue 13): items, memberships and waves that existed before
sharing kept its copies reach sharing's copies through the outbox, and sharing then refuses what the
board hides. Real PostgreSQL: content's database, its outbox rows decoded and applied by sharing's
handler on sharing's database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from advocacy_common.auth.principal import Principal
from advocacy_common.db import OUTBOX, make_engine, make_sessionmaker
from advocacy_common.errors import Forbidden
from advocacy_common.events.base import decode
from advocacy_common.migrations import upgrade
from advocacy_content.db import ContentItem, Member, Wave
from advocacy_content.features.announce import announce_tenant
from advocacy_sharing.db import ContentCopy
from advocacy_sharing.features import eligibility, shares

T0 = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
async def two_dbs(pg: Any) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]]]:
    urls = [pg.create_database(f"{s}_{uuid.uuid4().hex[:10]}") for s in ("content", "sharing")]
    await asyncio.to_thread(upgrade, "advocacy_content", urls[0])
    await asyncio.to_thread(upgrade, "advocacy_sharing", urls[1])
    engines = [make_engine(u, pool_size=2) for u in urls]
    yield make_sessionmaker(engines[0]), make_sessionmaker(engines[1])
    for e in engines:
        await e.dispose()


def item(tenant: str, cid: str, teams: list[str], status: str = "published") -> ContentItem:
    return ContentItem(
        id=cid,
        tenant_id=tenant,
        title=cid,
        url=f"https://example.com/{cid}",
        slug=cid,
        audience={"teams": teams, "programme_roles": [], "topics": []},
        status=status,
        published_at=T0,
        created_by="boss",
        created_at=T0,
        updated_at=T0,
    )


async def test_a_tenant_is_announced_and_sharing_then_refuses_what_the_board_hides(
    two_dbs: tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]],
) -> None:
    content_sm, sharing_sm = two_dbs
    t = f"t-{uuid.uuid4().hex[:8]}"
    async with content_sm() as s, s.begin():
        s.add_all([item(t, "for-b", ["b"]), item(t, "for-all", []), item(t, "draft", [], status="draft")])
        s.add(Member(tenant_id=t, employee_id="olga", enrolled=False, updated_at=T0))
        s.add(Wave(id="w1", tenant_id=t, name="pilot", starts_at=T0, teams=["a", "b"], created_by="boss",
                   created_at=T0, updated_at=T0))  # fmt: skip
    # sharing's copies as they were before this release: the items known, without their audience
    async with sharing_sm() as s, s.begin():
        for cid in ("for-b", "for-all"):
            s.add(ContentCopy(tenant_id=t, content_id=cid, title=cid, url="https://example.com/x", slug=cid,
                              status="published", updated_at=T0 + timedelta(hours=1)))  # fmt: skip
    async with content_sm() as s, s.begin():
        counts = await announce_tenant(s, t)
    assert (counts.waves, counts.members, counts.items) == (1, 1, 2)  # the draft is not announced
    async with content_sm() as s:
        rows = (await s.execute(sa.select(OUTBOX.c.headers, OUTBOX.c.value).where(OUTBOX.c.tenant_id == t))).all()
    events = [decode([(k, v.encode()) for k, v in h], v) for h, v in rows]
    async with sharing_sm() as s, s.begin():
        await shares.apply_content_events(s, events)

    now = datetime.now(UTC)

    async def refused(sub: str, team: str, cid: str) -> str | None:
        async with sharing_sm() as s:
            copy = await s.get(ContentCopy, (t, cid))
            assert copy is not None
            try:
                await eligibility.check(
                    s, Principal(sub=sub, tenant_id=t, roles=frozenset({"employee"}), team=team), copy, now
                )
            except Forbidden as e:
                return e.code
            return None

    assert await refused("ann", "a", "for-b") == "not_targeted"
    assert await refused("ben", "b", "for-b") is None
    assert await refused("olga", "b", "for-all") == "opted_out"
    assert await refused("cid", "c", "for-all") == "not_in_wave"
    # twice is harmless
    async with content_sm() as s, s.begin():
        await announce_tenant(s, t)
    async with sharing_sm() as s, s.begin():
        await shares.apply_content_events(s, events)
    assert await refused("ann", "a", "for-b") == "not_targeted"
