"""The window totals' statement when another transaction inserts the same new rows meanwhile
(docs/adr/0038-window-totals-by-update.md): the rows there are moved by an ``UPDATE``, the others
inserted by an upsert whose ``ON CONFLICT`` arm moves a row a concurrent transaction inserted after
the statement's snapshot. That arm is taken only under this race, so it is forced here: batch A
inserts new rows and stays open; batch B (other clicks, the same people) waits on A's rows in its
insert; A commits; B's rows come out of the conflict arm. Every total must equal the ledger's sum
and every score count the number of ranked people on that score."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from advocacy_gamification.adapters.ledger import NewEntry, post
from tests.integration.test_gamification_support import Gam, gam, gam_url, score_counts_agree

__all__ = ["gam", "gam_url"]

T0 = datetime(2026, 12, 2, 9, tzinfo=UTC)
PEOPLE = [f"p{i}" for i in range(6)]


def entries(tenant: str, tag: str, points: int) -> list[NewEntry]:
    return [
        NewEntry(
            tenant_id=tenant,
            employee_id=who,
            event_id=f"{tag}-{who}-{n}",
            rule_version=1,
            entry_type="award",
            action="click",
            points=points + i,
            balance_delta=points + i,
            occurred_at=T0 + timedelta(minutes=n),
        )
        for i, who in enumerate(PEOPLE)
        for n in range(2)
    ]


async def backend_waits_on_a_lock(g: Gam, pid: int) -> bool:
    return bool(await g.scalar("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p", p=pid))


async def test_rows_inserted_by_a_concurrent_batch_are_moved_once(gam: Gam, new_tenant: str) -> None:
    # the boards exist (another person's rows): B then waits on A's totals rows, not on A's boards
    async with gam.sm() as s, s.begin():
        await post(s, [NewEntry(new_tenant, "other", "seed", 1, "award", "click", 1, 1, T0)])
    async with gam.sm() as a, gam.sm() as b:
        await a.begin()
        await post(a, entries(new_tenant, "a", 3))
        await b.begin()
        pid_b: int = (await b.execute(sa.select(sa.func.pg_backend_pid()))).scalar_one()

        async def batch_b() -> None:
            await post(b, entries(new_tenant, "b", 5))
            await b.commit()

        task = asyncio.create_task(batch_b())
        for _ in range(200):
            if await backend_waits_on_a_lock(gam, pid_b):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("batch B never waited on batch A's rows")
        await a.commit()
        await task

    wrong = await gam.rows(
        'SELECT t."window", t.employee_id, t.points, s.points AS ledger FROM points_totals t '
        "JOIN (SELECT employee_id, sum(points) AS points FROM ledger WHERE tenant_id = :t GROUP BY 1) s "
        "USING (employee_id) WHERE t.tenant_id = :t AND t.points <> s.points",
        t=new_tenant,
    )
    assert wrong == []
    assert await gam.scalar("SELECT count(*) FROM points_totals WHERE tenant_id = :t", t=new_tenant) == 3 * 7
    await score_counts_agree(gam, new_tenant)
