"""Share points once per employee and content item by default, per network when the tenant's rules
say so; the ledger of earlier awards is never re-scored; simulate shows the effect (issue 13)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.pagination import PageParams
from advocacy_gamification.db import LEDGER, TOTALS
from advocacy_gamification.domain.rules import RulesBody
from advocacy_gamification.features.points import my_points
from advocacy_gamification.features.rules import simulate
from tests.integration.test_gamification_support import Gam, gam, gam_url, share

__all__ = ["gam", "gam_url"]  # fixtures


async def points_of(g: Gam, tenant: str, emp: str) -> dict[str, Any]:
    r = await (await g.as_(tenant, emp)).get("/v1/points/me")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_second_network_share_of_an_item_earns_nothing_by_default(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(share(t, "amy", content="launch"))  # linkedin
    await gam.apply(share(t, "amy", content="launch"), share(t, "amy", content="other"))  # x, then another item
    await gam.apply(share(t, "ben", content="launch"))  # someone else's share of the item still counts
    amy = await points_of(gam, t, "amy")
    assert amy["points"] == 20
    repeat = [i for i in amy["items"] if i["points"] == 0]
    assert len(repeat) == 1 and repeat[0]["content_id"] == "launch" and "already credited" in repeat[0]["reason"]
    assert (await points_of(gam, t, "ben"))["points"] == 10


async def test_a_tenant_may_credit_every_network_and_simulate_shows_either(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(share(t, "cat", content="c1"), share(t, "cat", content="c1"), share(t, "cat", content="c1"))
    assert (await points_of(gam, t, "cat"))["points"] == 10
    admin = await gam.as_(t, "boss", "admin")
    r = await admin.post("/v1/rules/simulate", params={"window": "week"}, json={"share_points_per": "network"})
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert (row["employee_id"], row["points"], row["current_points"]) == ("cat", 30, 10)
    r = await admin.post("/v1/rules/simulate", params={"window": "week"}, json={"share_points_per": "everything"})
    assert r.status_code == 422, r.text
    r = await admin.put("/v1/rules", json={"share_points_per": "network"})
    assert r.status_code == 200 and r.json()["share_points_per"] == "network", r.text
    await gam.apply(share(t, "cat", content="c1"))
    assert (await points_of(gam, t, "cat"))["points"] == 20  # the earlier repeats keep their 0: never re-scored
    r = await admin.post("/v1/rules/simulate", params={"window": "week"}, json={})  # the default: once per item
    assert [(i["points"], i["current_points"]) for i in r.json()["items"]] == [(10, 20)]


class CommitAfterRead:
    """A session that lets a consumer batch commit right after the caller's first read of ``table``
    and before its next statement: the moment a poll of ``GET /v1/points/me`` raced the consumer in
    the e2e run that failed (tests/e2e/test_share_eligibility.py: 0 points beside entries 10 and 0)."""

    def __init__(self, session: AsyncSession, table: sa.Table, gam: Gam, *batch: Any) -> None:
        self.session = session
        self.table = table
        self.gam = gam
        self.batch = batch
        self.committed = False

    async def _after(self, stmt: Any) -> None:
        if not self.committed and self.table in getattr(stmt, "get_final_froms", list)():
            self.committed = True
            await self.gam.apply(*self.batch)

    async def scalar(self, stmt: Any, *args: Any, **kw: Any) -> Any:
        out = await self.session.scalar(stmt, *args, **kw)
        await self._after(stmt)
        return out

    async def execute(self, stmt: Any, *args: Any, **kw: Any) -> Any:
        out = await self.session.execute(stmt, *args, **kw)
        await self._after(stmt)
        return out


async def test_my_points_are_the_sum_of_the_entries_shown_even_as_a_batch_commits(gam: Gam, new_tenant: str) -> None:
    """The figures and the entries of "my points" come from one snapshot: a batch that commits
    while they are read is in all of them or in none (it was in the entries only: 0 points shown
    beside a 10-point share)."""
    t = new_tenant
    async with gam.sm() as session, session.begin():  # as SessionDep: one transaction per request
        batch = share(t, "ann", content="news"), share(t, "ann", content="news")
        racing = CommitAfterRead(session, TOTALS, gam, *batch)
        me = await my_points(racing, t, "ann", PageParams(limit=50, cursor=None))  # type: ignore[arg-type]
    assert racing.committed
    assert me["points"] == sum(i["points"] for i in me["items"]), me
    assert me["balance"] == sum(i["balance_change"] for i in me["items"]), me
    after = await points_of(gam, t, "ann")  # the next read sees the batch whole
    assert (after["points"], sorted(i["points"] for i in after["items"])) == (10, [0, 10])


async def test_a_simulation_compares_with_the_totals_of_the_awards_it_scored(gam: Gam, new_tenant: str) -> None:
    """Simulating the rules in effect shows every current total unchanged, even when a batch
    commits between the simulation's read of the ledger and its read of the totals."""
    t = new_tenant
    await gam.apply(share(t, "amy"))
    async with gam.sm() as session, session.begin():
        racing = CommitAfterRead(session, LEDGER, gam, share(t, "amy"), share(t, "bob"))
        board = await simulate(racing, t, RulesBody(), "week", None, PageParams(limit=50, cursor=None))  # type: ignore[arg-type]
    assert racing.committed
    assert [(i["employee_id"], i["points"], i["current_points"]) for i in board["items"]] == [("amy", 10, 10)], board
