"""Gamification answers put together from several statements read one snapshot: a consumer batch
that commits between two of them is in every figure of the answer or in none (the cause of the
flaky "my points", commit 844c92c; the same race for "my badges" and a challenge's progress)."""

from __future__ import annotations

from typing import Any

from advocacy_common.person_export import export_person
from advocacy_gamification.features import badges, challenges
from advocacy_gamification.features.person_export import SECTIONS as EXPORT_SECTIONS
from tests.integration.test_gamification_challenges import create
from tests.integration.test_gamification_support import Gam, gam, gam_url, share
from tests.support.snapshots import CommitBetweenReads

__all__ = ["gam", "gam_url"]  # fixtures


async def test_my_badges_agree_with_the_counts_beside_them(gam: Gam, new_tenant: str) -> None:
    """A first share commits between the read of the badges and the read of the counts: the answer
    shows neither (it showed 1 share and no "first share" badge)."""
    t = new_tenant
    async with gam.sm() as session, session.begin():
        before = await badges.mine(session, t, "ann")
    async with gam.sm() as session, session.begin():
        racing = CommitBetweenReads(session, "badges_earned", lambda: gam.apply(share(t, "ann")))
        during = await badges.mine(racing, t, "ann")  # type: ignore[arg-type]
    assert racing.committed
    async with gam.sm() as session, session.begin():
        after: Any = await badges.mine(session, t, "ann")
    assert [b["badge"] for b in after["items"]] == ["first_share"] and after["counts"]["shares"] == 1
    assert during == before, during


async def test_a_challenges_progress_agrees_with_itself(gam: Gam, new_tenant: str) -> None:
    """bob's first share in the challenge commits right after the count of participants: the answer
    shows one participant and one person on top, not one participant beside two."""
    t = new_tenant
    c = await create(gam, t, content_ids=["launch"])
    await gam.apply(share(t, "ann", content="launch"))

    async def detail(session: Any) -> dict[str, Any]:
        return await challenges.detail(session, t, c["id"], "bob")

    async with gam.sm() as session, session.begin():
        before = await detail(session)
    async with gam.sm() as session, session.begin():
        racing = CommitBetweenReads(session, "challenge_totals", lambda: gam.apply(share(t, "bob", content="launch")))
        during = await detail(racing)
    assert racing.committed
    async with gam.sm() as session, session.begin():
        after = await detail(session)
    assert (after["progress"]["participants"], len(after["progress"]["top"]), after["me"]["rank"]) == (2, 2, 1)
    during["status"], before["status"] = None, None  # computed from the clock
    assert (during["progress"], during["me"]) == (before["progress"], before["me"]), during


async def test_a_persons_export_agrees_with_itself(gam: Gam, new_tenant: str) -> None:
    """The data export's balance and totals are the sums of the ledger it exports beside them, even
    when a batch commits right after the ledger's read."""
    t = new_tenant
    await gam.apply(share(t, "ann"))

    async def export(session: Any) -> dict[str, Any]:
        out = await export_person(session, "gamification", EXPORT_SECTIONS, t, "ann")
        return {name: s.items for name, s in out.sections.items()}

    async with gam.sm() as session, session.begin():
        before = await export(session)
    async with gam.sm() as session, session.begin():
        racing = CommitBetweenReads(session, "ledger", lambda: gam.apply(share(t, "ann")))
        during = await export(racing)
    assert racing.committed
    assert [e["points"] for e in during["ledger"]] == [10]
    assert during == before, during
