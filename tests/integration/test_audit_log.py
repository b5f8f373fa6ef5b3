"""The audit log (issue 13): entries written in the change's transaction, read newest first with
filters and cursors, purged by each tenant's retention, and erasure keeps the entry but not the person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from advocacy_common import audit
from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.errors import Unprocessable
from advocacy_common.migrations import upgrade
from advocacy_common.pagination import PageParams, decode_cursor

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def sm(new_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await asyncio.to_thread(upgrade, "advocacy_content", new_database)
    engine = make_engine(new_database)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _add(
    sm: async_sessionmaker[AsyncSession], tenant: str, actor: str, action: str, at: datetime, **kw: object
) -> None:
    async with sm() as s, s.begin():
        await audit.record(s, tenant, actor, action, at=at, **kw)  # type: ignore[arg-type]


async def test_entries_are_read_newest_first_filtered_and_paged(sm: async_sessionmaker[AsyncSession]) -> None:
    for i in range(5):
        await _add(sm, "t1", "boss", "policy.updated", T0 + timedelta(minutes=i), after={"v": i})
    await _add(sm, "t1", "chief", "rules.updated", T0 + timedelta(minutes=10), target="3")
    await _add(sm, "t2", "boss", "policy.updated", T0 + timedelta(minutes=20))  # another tenant's
    async with sm() as s:
        page = await audit.read(s, "t1", PageParams(limit=4, cursor=None))
        assert [(e.action, e.after) for e in page.items] == [
            ("rules.updated", None),
            ("policy.updated", {"v": 4}),
            ("policy.updated", {"v": 3}),
            ("policy.updated", {"v": 2}),
        ]
        assert page.next_cursor is not None
        rest = await audit.read(s, "t1", PageParams(limit=4, cursor=decode_cursor(page.next_cursor)))
        assert [e.after for e in rest.items] == [{"v": 1}, {"v": 0}] and rest.next_cursor is None
        only = await audit.read(s, "t1", PageParams(limit=50, cursor=None), actor="chief")
        assert [(e.action, e.target) for e in only.items] == [("rules.updated", "3")]
        window = await audit.read(
            s, "t1", PageParams(limit=50, cursor=None), since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)
        )
        assert [e.after for e in window.items] == [{"v": 2}, {"v": 1}]
        with pytest.raises(Unprocessable):
            await audit.read(s, "t1", PageParams(limit=5, cursor=["x", "y"]))


async def test_an_unknown_action_or_a_huge_state_is_refused_or_shortened(sm: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        await _add(sm, "t1", "boss", "everything.deleted", T0)
    await _add(sm, "t1", "boss", "policy.updated", T0, after={"terms": ["x" * 1000] * 100})
    async with sm() as s:
        (entry,) = (await audit.read(s, "t1", PageParams(limit=5, cursor=None))).items
    assert "omitted" in entry.after


async def test_entries_are_purged_by_each_tenants_retention(sm: async_sessionmaker[AsyncSession]) -> None:
    now = datetime.now(UTC)
    async with sm() as s, s.begin():
        await s.execute(
            sa.text("INSERT INTO tenant_settings (tenant_id, settings, updated_at) VALUES ('short', :doc, now())"),
            {"doc": '{"audit_retention_days": 30}'},
        )
    for tenant in ("short", "default"):
        for age in (10, 40, 400):
            await _add(sm, tenant, "boss", "policy.updated", now - timedelta(days=age), after={"age": age})
    async with sm() as s, s.begin():
        assert await audit.purge(s, has_settings_copy=True) == 3  # short: 40 and 400; default (365): 400
    async with sm() as s:
        kept = {
            t: [e.after["age"] for e in (await audit.read(s, t, PageParams(limit=9, cursor=None))).items]
            for t in ("short", "default")
        }
    assert kept == {"short": [10], "default": [10, 40]}


async def test_erasure_keeps_the_entry_but_not_the_person(sm: async_sessionmaker[AsyncSession]) -> None:
    await _add(sm, "t1", "ann", "suggestion.approved", T0, target="c1")
    await _add(sm, "t1", "boss", "points.reversed", T0, target="ann")
    await _add(sm, "t2", "ann", "policy.updated", T0)  # the same id in another tenant is someone else
    async with sm() as s, s.begin():
        await audit.forget_person(s, "t1", "ann")
    async with sm() as s:
        t1 = (await audit.read(s, "t1", PageParams(limit=9, cursor=None))).items
        t2 = (await audit.read(s, "t2", PageParams(limit=9, cursor=None))).items
    assert sorted((e.actor, e.action, e.target) for e in t1) == [
        ("boss", "points.reversed", "erased"),
        ("erased", "suggestion.approved", "c1"),
    ]
    assert [e.actor for e in t2] == ["ann"]
