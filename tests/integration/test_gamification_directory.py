"""Gamification and the company directory (issue 17), on the real database: a deactivated person
leaves the boards, their own rank, the live stream and everyone's ranks at once, earns nothing
(``member_inactive``) while inactive, and comes back when reactivated; the per-capita team board
divides by the directory's team size when it knows the team; erasure and late records."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberProvisioned, TeamUpdated
from advocacy_gamification.features.awards import INACTIVE_REASON
from tests.integration.test_gamification_stream import points_of, replica, stream, ticket
from tests.integration.test_gamification_support import (
    CONTENT,
    Gam,
    click,
    conversion,
    erased,
    gam,
    gam_url,
    now,
    score_counts_agree,
    share,
)

__all__ = ["gam", "gam_url"]


def provisioned(
    tenant: str, emp: str, *, active: bool = True, team: str | None = None, at: datetime | None = None
) -> Any:
    return new_event(
        CONTENT,
        tenant,
        MemberProvisioned(
            employee_id=emp,
            user_name=f"{emp}@example.com",
            display_name=emp.title(),
            active=active,
            team=team,
            updated_at=at or now(),
        ),
    )


def team_size(tenant: str, team: str, size: int, *, deleted: bool = False, at: datetime | None = None) -> Envelope[Any]:
    return new_event(CONTENT, tenant, TeamUpdated(team=team, size=size, deleted=deleted, updated_at=at or now()))


async def listed(gam: Gam, tenant: str, **params: Any) -> list[tuple[int, str | None, int]]:
    c = await gam.as_(tenant, "viewer")
    r = await c.get("/v1/leaderboard", params={"window": "all", **params})
    assert r.status_code == 200, r.text
    return [(i["rank"], i["employee_id"], i["points"]) for i in r.json()["items"]]


async def my_rank(gam: Gam, tenant: str, sub: str) -> tuple[int | None, int]:
    body = (await (await gam.as_(tenant, sub)).get("/v1/leaderboard/me", params={"window": "all"})).json()
    return body["rank"], body["points"]


async def test_a_deactivated_person_leaves_every_board_earns_nothing_and_comes_back(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    at = now()
    await gam.apply(provisioned(t, "ann", team="sales", at=at), provisioned(t, "bob", team="sales", at=at))
    await gam.apply(share(t, "ann"), click(t, "ann"), click(t, "ann"), share(t, "bob"))  # ann 12, bob 10
    assert await listed(gam, t) == [(1, "ann", 12), (2, "bob", 10)]
    assert await listed(gam, t, team="sales") == [(1, "ann", 12), (2, "bob", 10)]
    assert await my_rank(gam, t, "bob") == (2, 10)

    await gam.apply(provisioned(t, "ann", active=False, team="sales", at=at + timedelta(seconds=1)))
    assert await listed(gam, t) == [(1, "bob", 10)]  # bob moves up at once
    assert await listed(gam, t, team="sales") == [(1, "bob", 10)]
    assert await my_rank(gam, t, "bob") == (1, 10)
    assert await my_rank(gam, t, "ann") == (None, 12)
    await score_counts_agree(gam, t)

    # her link keeps bringing clicks (and a conversion): recorded, worth nothing
    await gam.apply(click(t, "ann"), click(t, "ann"), conversion(t, "ann"))
    rows = await gam.rows(
        "select action, points, reason from ledger where tenant_id = :t and employee_id = 'ann' and reason = :r",
        t=t,
        r=INACTIVE_REASON,
    )
    assert sorted((r.action, r.points) for r in rows) == [("click", 0), ("click", 0), ("conversion", 0)]
    assert await my_rank(gam, t, "ann") == (None, 12)
    # an older record arriving late does not bring her back
    await gam.apply(provisioned(t, "ann", active=True, team="sales", at=at - timedelta(minutes=1)))
    assert await listed(gam, t) == [(1, "bob", 10)]

    await gam.apply(provisioned(t, "ann", active=True, team="sales", at=at + timedelta(seconds=2)))
    assert await listed(gam, t) == [(1, "ann", 12), (2, "bob", 10)]
    await gam.apply(click(t, "ann"))
    assert await listed(gam, t) == [(1, "ann", 13), (2, "bob", 10)]
    await score_counts_agree(gam, t)


async def test_a_deactivation_reaches_an_open_live_board(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    await gam.apply(provisioned(t, "cat", team="ops"), provisioned(t, "dan", team="ops"))
    await gam.apply(share(t, "cat"), click(t, "cat"), share(t, "dan"))
    async with replica(gam.url, gam.jwks_path) as base, stream(base, await ticket(base, gam.mint(t, "dan"))) as sse:
        _, _, first = await sse.next(5)
        assert points_of("cat")(first) == 11
        await gam.apply(provisioned(t, "cat", active=False, team="ops", at=now() + timedelta(seconds=1)))
        _, data = await sse.until(lambda d: points_of("cat")(d) is None, 5)
        assert [(i["rank"], i["employee_id"]) for i in data["items"]] == [(1, "dan")]


async def test_the_team_board_divides_by_the_directory_team_size(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    at = now()
    for emp, team in [("e1", "big"), ("e2", "big"), ("s1", "small")]:
        await gam.apply(provisioned(t, emp, team=team, at=at))
    await gam.apply(share(t, "e1"), share(t, "e2"), share(t, "s1"))  # big 20, small 10

    async def teams() -> list[tuple[str, int, int, float]]:
        r = await (await gam.as_(t, "e1")).get("/v1/leaderboard/teams", params={"window": "week"})
        assert r.status_code == 200, r.text
        return [(i["team"], i["points"], i["members"], i["points_per_member"]) for i in r.json()["items"]]

    # no sizes from the directory: the people known in each team
    assert await teams() == [("big", 20, 2, 10.0), ("small", 10, 1, 10.0)]
    # the directory says big has 10 active members, small 2, and "quiet" 4 (nobody has acted yet)
    await gam.apply(team_size(t, "big", 10, at=at), team_size(t, "small", 2, at=at), team_size(t, "quiet", 4, at=at))
    assert await teams() == [("small", 10, 2, 5.0), ("big", 20, 10, 2.0), ("quiet", 0, 4, 0.0)]
    # an older size never overwrites a newer one; a deleted team falls back to the people known in it
    await gam.apply(team_size(t, "big", 1, at=at - timedelta(minutes=1)))
    await gam.apply(team_size(t, "small", 0, deleted=True, at=at + timedelta(seconds=1)))
    assert await teams() == [("small", 10, 1, 10.0), ("big", 20, 10, 2.0), ("quiet", 0, 4, 0.0)]
    # a deactivated person's points leave their team's total
    await gam.apply(provisioned(t, "e2", active=False, team="big", at=at + timedelta(seconds=1)))
    assert ("big", 10, 10, 1.0) in await teams()


async def test_erasure_drops_the_record_and_a_late_one_does_not_bring_it_back(gam: Gam, new_tenant: str) -> None:
    t = new_tenant
    at = now()
    await gam.apply(provisioned(t, "eve", team="ops", active=False, at=at), share(t, "eve"))
    await gam.apply(erased(t, "eve"))
    await gam.apply(provisioned(t, "eve", team="ops", at=at + timedelta(seconds=1)))
    assert await gam.scalar("select count(*) from members where tenant_id = :t and employee_id = 'eve'", t=t) == 0
    # the pseudonym's row keeps her off the boards
    assert await gam.scalar("select bool_or(active) from members where tenant_id = :t", t=t) is False
    assert await listed(gam, t) == []
