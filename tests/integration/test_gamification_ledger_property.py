"""Issue 5 acceptance, database-backed: any sequence of awards (as real events, redelivered at
will), reversals (click invalidations and admin reversals, repeated at will), redemptions (with
repeated idempotency keys) and cancellations, run through the service's own code against
PostgreSQL, leaves every balance equal to the sum of its ledger, never below zero, and equal to
what the in-memory reference (``domain.Book``) says; the boards and the stock agree too."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from advocacy_common.db import make_sessionmaker
from advocacy_common.errors import Conflict, NotFound, Unprocessable
from advocacy_common.events import Envelope
from advocacy_gamification.domain import Book
from advocacy_gamification.features import points, rewards
from advocacy_gamification.features.awards import apply_events
from tests.integration.test_gamification_support import click, conversion, gam_url, invalidate, share, suggestion

__all__ = ["gam_url"]

EMPLOYEES = ["ann", "bob", "cy"]
KINDS = {"share": 10, "click": 1, "sale": 50, "lead": 30, "suggestion": 15}
REWARDS = {"mug": 15, "hoodie": 40}

events_table = st.lists(st.tuples(st.sampled_from(EMPLOYEES), st.sampled_from(sorted(KINDS))), min_size=1, max_size=8)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("award"), st.integers(0, 7)),
        st.tuples(st.just("reverse"), st.integers(0, 7), st.booleans()),
        st.tuples(st.just("redeem"), st.sampled_from(EMPLOYEES), st.integers(0, 3), st.sampled_from(sorted(REWARDS))),
        st.tuples(st.just("cancel"), st.integers(1, 6)),
    ),
    max_size=30,
)


def build(tenant: str, emp: str, kind: str) -> Envelope[Any]:
    if kind == "share":
        return share(tenant, emp)
    if kind == "click":
        return click(tenant, emp)
    if kind == "suggestion":
        return suggestion(tenant, emp)
    return conversion(tenant, emp, kind)


async def run(url: str, table: list[tuple[str, str]], seq: list[tuple[Any, ...]], stock: dict[str, int]) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(url, poolclass=NullPool)
    sm = make_sessionmaker(engine)
    book = Book(stock=dict(stock))
    envs = [build(tenant, emp, kind) for emp, kind in table]
    reward_ids: dict[str, str] = {}
    redemption_ids: dict[str, str] = {}  # the book's id -> the database's
    try:
        async with sm() as s, s.begin():
            for name, cost in REWARDS.items():
                made = await rewards.create(s, tenant, "boss", name, None, cost, stock[name], None)
                reward_ids[name] = made["id"]
        for op in seq:
            async with sm() as s:
                if op[0] == "award":
                    i = op[1] % len(envs)
                    async with s.begin():
                        await apply_events(s, [envs[i]])
                    book.award(table[i][0], envs[i].id, 0, KINDS[table[i][1]])
                elif op[0] == "reverse":
                    i = op[1] % len(envs)
                    emp, kind = table[i]
                    env = envs[i]
                    if kind == "click" and op[2]:
                        async with s.begin():
                            await apply_events(s, [invalidate(tenant, emp, env.data.click_id)])
                    else:
                        try:
                            async with s.begin():
                                await points.admin_reverse(s, tenant, emp, env.id, "test", by="admin")
                        except (NotFound, Conflict):
                            pass
                    book.reverse(env.id)
                elif op[0] == "redeem":
                    _, emp, key, reward = op
                    want, red = book.redeem(emp, f"k{key}", reward, REWARDS[reward])
                    try:
                        async with s.begin():
                            got = await rewards.redeem(s, tenant, emp, reward_ids[reward], f"k{key}")
                        outcome = "replayed" if got["replayed"] else "created"
                        if want == "created" and red is not None:
                            redemption_ids[red.id] = got["id"]
                    except Conflict as e:
                        outcome = e.code
                    except Unprocessable:
                        outcome = "key_reused"
                    assert outcome == want, (op, outcome, want)
                else:
                    rid = f"r{op[1]}"
                    entry = book.cancel(rid)
                    if rid in redemption_ids:
                        try:
                            async with s.begin():
                                await rewards.cancel(s, tenant, redemption_ids[rid], None)
                            assert entry is not None
                        except Conflict:
                            assert entry is None
        async with engine.connect() as conn:
            balances = dict(
                (
                    await conn.execute(
                        sa.text("SELECT employee_id, balance FROM balances WHERE tenant_id = :t"), {"t": tenant}
                    )
                ).all()
            )
            sums = dict(
                (
                    await conn.execute(
                        sa.text("SELECT employee_id, SUM(balance_delta) FROM ledger WHERE tenant_id = :t GROUP BY 1"),
                        {"t": tenant},
                    )
                ).all()
            )
            boards = dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT employee_id, points FROM points_totals WHERE tenant_id = :t AND \"window\" = 'all'"
                        ),
                        {"t": tenant},
                    )
                ).all()
            )
            stocks = dict(
                (
                    await conn.execute(sa.text("SELECT name, stock FROM rewards WHERE tenant_id = :t"), {"t": tenant})
                ).all()
            )
            truth = sorted(
                (
                    await conn.execute(
                        sa.text(
                            'SELECT "window", window_start, points, count(*) FROM points_totals '
                            "WHERE tenant_id = :t AND ranked GROUP BY 1, 2, 3"
                        ),
                        {"t": tenant},
                    )
                ).all()
            )
            kept = sorted(
                (
                    await conn.execute(
                        sa.text(
                            'SELECT "window", window_start, points, count FROM score_counts '
                            "WHERE tenant_id = :t AND count <> 0"
                        ),
                        {"t": tenant},
                    )
                ).all()
            )
        assert truth == kept
        for emp in EMPLOYEES:
            assert balances.get(emp, 0) == (sums.get(emp) or 0) == book.balance(emp), emp
            assert balances.get(emp, 0) >= 0
            assert boards.get(emp, 0) == book.score(emp), emp
        assert stocks == book.stock
    finally:
        await engine.dispose()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(events_table, ops, st.integers(0, 2), st.integers(0, 2))
def test_database_ledger_matches_the_reference(
    gam_url: str, table: list[tuple[str, str]], seq: list[Any], mugs: int, hoodies: int
) -> None:
    asyncio.run(run(gam_url, table, seq, {"mug": mugs, "hoodie": hoodies}))
