"""The redirect, the journal, the verdict worker and the database, in one process on a private broker.

Clicks go through the real path: /r/{code} -> journal -> Kafka -> verdict consumer -> clicks table.
The redirect's clock is injected (the worker judges by the time the redirect recorded).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from advocacy_common.db import after_commit
from advocacy_common.events import new_event
from advocacy_common.tenant import ClickAllowList
from tests.support.sharing import CHROME, FakeClock, Sharing, allow_clicks, clock, hit, new_link, scanner_rows

__all__ = ["clock"]  # the fixture, used by name


async def test_ten_clicks_in_an_hour_from_one_visitor_count_once(sharing: Sharing, clock: FakeClock) -> None:
    link = await new_link(sharing)
    for _ in range(10):
        r = await hit(sharing, link["code"])
        assert r.status_code == 302
        clock.advance(6 * 60)
    got = await sharing.wait_clicks(link["code"], 10)
    assert got == {"counted": 1, "duplicate": 9}


async def test_two_clicks_25_hours_apart_both_count(sharing: Sharing, clock: FakeClock) -> None:
    link = await new_link(sharing)
    assert (await hit(sharing, link["code"])).status_code == 302
    clock.advance(25 * 3600)  # the next day: a new visitor key, compared with yesterday's too
    assert (await hit(sharing, link["code"])).status_code == 302
    clock.advance(3600)  # and one more an hour later is a duplicate across the key rotation
    assert (await hit(sharing, link["code"])).status_code == 302
    got = await sharing.wait_clicks(link["code"], 3)
    assert got == {"counted": 2, "duplicate": 1}


async def test_the_sharers_own_click_earns_nothing(sharing: Sharing) -> None:
    # the share is created from the sharer's browser: same address, same user agent as the click
    link = await new_link(sharing, headers={"X-Forwarded-For": "203.0.113.9", "User-Agent": CHROME})
    assert (await hit(sharing, link["code"], ip="203.0.113.9")).status_code == 302
    assert (await hit(sharing, link["code"], ip="203.0.113.10")).status_code == 302
    got = await sharing.wait_clicks(link["code"], 2)
    assert got == {"self": 1, "counted": 1}


async def test_head_and_crawlers_are_answered_but_never_counted(sharing: Sharing) -> None:
    link = await new_link(sharing)
    r = await hit(sharing, link["code"], method="HEAD", ip="198.18.1.1")
    assert r.status_code == 302 and r.content == b""
    for i, ua in enumerate(
        ["LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "Twitterbot/1.0", ""]
    ):
        assert (await hit(sharing, link["code"], ua=ua, ip=f"198.18.2.{i}")).status_code == 302
    got = await sharing.wait_clicks(link["code"], 4)
    assert got == {"bot": 4}
    # every bot verdict stores its reason
    reasons = sorted(r[0] for r in await sharing.rows("select reason from clicks where code = :c", c=link["code"]))
    assert reasons == ["head_request", "preview_fetcher", "preview_fetcher", "ua_not_browser"]


async def test_more_than_30_a_minute_is_answered_429_and_recorded(sharing: Sharing) -> None:
    link = await new_link(sharing)
    statuses = [(await hit(sharing, link["code"], ip="198.18.3.3")).status_code for _ in range(40)]
    assert statuses == [302] * 30 + [429] * 10
    got = await sharing.wait_clicks(link["code"], 40)
    assert got == {"counted": 1, "duplicate": 29, "rate_limited": 10}


async def test_destination_is_the_content_url_only(sharing: Sharing) -> None:
    link = await new_link(sharing)
    async with sharing.client(**{"X-Forwarded-For": "198.18.4.4", "User-Agent": CHROME}) as c:
        r = await c.get(f"/r/{link['code']}?url=https://evil.example&next=//evil.example")
        assert r.status_code == 302
        loc = r.headers["location"]
        assert loc.startswith("https://example.com/post?ref=a&utm_source=linkedin&utm_medium=employee_advocacy")
        assert "utm_campaign=a-post" in loc and "adv_click=" in loc and "evil" not in loc
        assert (await c.get("/r/" + "A" * 2100)).status_code in (404, 414)
        assert (await c.get("/r/" + "%41" * 800)).status_code in (404, 414)
        assert (await c.get("/r/ZZZZZZZZZZ")).status_code == 404
        assert (await c.get("/r/short")).status_code == 404
        assert (await c.get("/r/../../etc/passwd")).status_code == 404
        assert (await c.post(f"/r/{link['code']}")).status_code == 405


async def test_enrichment_lands_in_the_click(sharing: Sharing) -> None:
    link = await new_link(sharing)
    r = await hit(
        sharing, link["code"], ip="198.18.5.5", Referer="https://www.linkedin.com/feed/", **{"CF-IPCountry": "de"}
    )
    assert r.status_code == 302
    await sharing.wait_clicks(link["code"], 1)
    row = (
        await sharing.rows(
            "select device, browser, os, referrer_domain, country, visitor from clicks where code = :c", c=link["code"]
        )
    )[0]
    assert tuple(row[:5]) == ("desktop", "Chrome", "Windows", "linkedin.com", "DE")
    assert "198.18" not in row[5]  # no raw IP


async def test_archived_content_answers_410_at_once(sharing: Sharing) -> None:

    from advocacy_common.events.content import ContentArchived

    link = await new_link(sharing)
    assert (await hit(sharing, link["code"], ip="198.18.6.6")).status_code == 302  # now cached
    await sharing.publish(
        new_event(
            "/advocacy/content",
            link["tenant"],
            ContentArchived(content_id=link["content_id"], archived_at=datetime.now(UTC)),
        )
    )
    import time

    deadline = time.monotonic() + 15
    while (await hit(sharing, link["code"], ip="198.18.6.7")).status_code != 410:
        assert time.monotonic() < deadline, "the cache never learned of the archive"
        await asyncio.sleep(0.1)
    assert (
        await sharing.scalar("select status from content_copies where content_id = :c", c=link["content_id"])
        == "archived"
    )


async def test_a_replica_that_missed_the_event_learns_at_the_ttl_refresh(sharing: Sharing) -> None:
    import sqlalchemy as sa

    link = await new_link(sharing)
    assert (await hit(sharing, link["code"], ip="198.18.7.1")).status_code == 302  # cached now
    # as if another replica's consumer archived it: this process's cache never saw the event
    async with sharing.engine.begin() as conn:
        await conn.execute(
            sa.text("update content_copies set status = 'archived' where content_id = :c"), {"c": link["content_id"]}
        )
    assert (await hit(sharing, link["code"], ip="198.18.7.2")).status_code == 302
    cache = sharing.runtime.parts.cache
    ttl, cache.ttl = cache.ttl, 0.0
    try:
        assert await cache.refresh_stale() >= 1
    finally:
        cache.ttl = ttl
    assert (await hit(sharing, link["code"], ip="198.18.7.3")).status_code == 410


async def test_a_new_link_is_read_ahead_of_its_first_visit(sharing: Sharing) -> None:
    from advocacy_sharing.adapters.redirect import LinkTarget

    # the share's commit reads its link into the cache: the first visit does not wait on the
    # database (a database slow for a moment is then no visitor's wait; scenario 10 met one)
    link = await new_link(sharing)
    cache = sharing.runtime.parts.cache
    deadline = time.monotonic() + 5
    while not isinstance(cache.peek(link["code"]), LinkTarget) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    found = cache.peek(link["code"])
    assert isinstance(found, LinkTarget) and found.content_id == link["content_id"] and not found.gone


async def test_after_commit_follows_the_commit_never_a_rollback(sharing: Sharing) -> None:
    import sqlalchemy as sa

    calls: list[str] = []
    async with sharing.runtime.sessionmaker() as s:
        await s.begin()
        after_commit(s, lambda: calls.append("rolled back"))
        await s.execute(sa.text("select 1"))
        await s.rollback()
        await s.begin()
        after_commit(s, lambda: calls.append("committed"))
        savepoint = await s.begin_nested()  # a savepoint rolled back is not the transaction's end
        await s.execute(sa.text("select 1"))
        await savepoint.rollback()
        assert calls == []
        await s.commit()
        await s.begin()
        await s.execute(sa.text("select 1"))
        await s.commit()  # once only
    assert calls == ["committed"]


# -- mail scanners (issue 21): the redirect's clock is injected, no sleeping -----------------------------
async def test_a_scanner_burst_on_a_new_link_earns_nothing_a_visitor_a_minute_later_counts(
    sharing: Sharing, clock: FakeClock
) -> None:
    link = await new_link(sharing)
    for i in range(4):  # four addresses of one /24, within a second of each other and of the share
        assert (await hit(sharing, link["code"], ip=f"203.0.113.{20 + i}")).status_code == 302
        clock.advance(0.2)
    clock.advance(60)
    assert (await hit(sharing, link["code"], ip="203.0.113.99", **{"Accept-Language": "de"})).status_code == 302
    await sharing.wait_clicks(link["code"], 5)
    rows = await scanner_rows(sharing, link["code"])
    assert all(net == "203.0.113.0/24" for *_, net in rows)
    # each scanner click is a bot with its reason, or (judged before the rest of its burst came) was
    # counted and then taken back with that reason
    for verdict, reason, taken_back, _ in rows[:4]:
        assert (verdict, reason) == ("bot", "scanner_timing") or (verdict, taken_back) == ("counted", "scanner_timing")
    assert rows[4][:3] == ("counted", None, None)


async def test_a_burst_click_counted_before_the_rest_came_is_taken_back(sharing: Sharing, clock: FakeClock) -> None:
    link = await new_link(sharing)
    assert (await hit(sharing, link["code"], ip="192.0.2.10")).status_code == 302
    assert await sharing.wait_clicks(link["code"], 1) == {"counted": 1}
    for i in range(2):
        clock.advance(0.3)
        assert (await hit(sharing, link["code"], ip=f"192.0.2.{11 + i}")).status_code == 302
    await sharing.wait_clicks(link["code"], 3)
    rows = await scanner_rows(sharing, link["code"])
    assert [r[:3] for r in rows] == [
        ("counted", None, "scanner_timing"),
        ("bot", "scanner_timing", None),
        ("bot", "scanner_timing", None),
    ]
    taken = await sharing.rows(
        "select count(*) from outbox where event_type = 'io.advocacy.share.click_invalidated.v1' and key like :k",
        k=f"%{link['tenant']}%",
    )
    assert taken[0][0] == 1


async def test_visitors_of_one_network_minutes_apart_all_count(sharing: Sharing, clock: FakeClock) -> None:
    link = await new_link(sharing)
    for i in range(4):  # colleagues behind one office address block, a minute apart
        clock.advance(60)
        assert (await hit(sharing, link["code"], ip=f"198.51.100.{30 + i}")).status_code == 302
    assert await sharing.wait_clicks(link["code"], 4) == {"counted": 4}


async def test_a_tenants_allow_list_counts_its_own_agent_and_network(sharing: Sharing, clock: FakeClock) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    allow = ClickAllowList(user_agents=["AcmeIntranet/"], networks=["203.0.113.0/24"])
    await allow_clicks(sharing, tenant, allow)
    link = await new_link(sharing, tenant=tenant)
    clock.now = time.time()  # the burst below is within a second of the share's creation
    # its intranet app's agent (no browser evidence) from elsewhere, and a burst from its office on the
    # new link: all counted
    assert (await hit(sharing, link["code"], ip="198.51.100.5", ua="AcmeIntranet/2.1")).status_code == 302
    for i in range(3):
        assert (await hit(sharing, link["code"], ip=f"203.0.113.{50 + i}")).status_code == 302
    assert await sharing.wait_clicks(link["code"], 4) == {"counted": 4}
    # another tenant's link: the same agent is a bot, the same burst a scanner
    other = await new_link(sharing)
    clock.now = time.time()
    assert (await hit(sharing, other["code"], ip="198.51.100.5", ua="AcmeIntranet/2.1")).status_code == 302
    for i in range(3):
        assert (await hit(sharing, other["code"], ip=f"203.0.113.{50 + i}")).status_code == 302
    assert await sharing.wait_clicks(other["code"], 4) == {"bot": 4}


async def test_a_browser_without_accept_language_is_a_bot_unless_allow_listed(
    sharing: Sharing, clock: FakeClock
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    allow = ClickAllowList(networks=["198.51.100.0/24"])
    await allow_clicks(sharing, tenant, allow)
    link = await new_link(sharing, tenant=tenant)
    # Chrome's user agent without the header (a scanner borrowing it), the same agent with it (a
    # person), and the tenant's own allow-listed network without it; a minute apart, networks apart
    clock.advance(60)
    assert (await hit(sharing, link["code"], ip="192.0.2.61", language=None)).status_code == 302
    clock.advance(60)
    assert (await hit(sharing, link["code"], ip="192.0.3.62")).status_code == 302
    clock.advance(60)
    assert (await hit(sharing, link["code"], ip="198.51.100.63", language=None)).status_code == 302
    await sharing.wait_clicks(link["code"], 3)
    rows = await sharing.rows(
        "select verdict, reason, accept_language from clicks where code = :c order by received_at", c=link["code"]
    )
    assert [tuple(r) for r in rows] == [
        ("bot", "no_accept_language", False),
        ("counted", None, True),
        ("counted", None, False),
    ]


async def test_a_visitors_click_on_another_link_is_no_duplicate_here(sharing: Sharing, clock: FakeClock) -> None:
    # The history is read for the batch's exact (link, visitor) pairs: X's click on b and Y's on a
    # are in it when X clicks a and Y clicks b, and neither may make the other a duplicate.
    a, b = await new_link(sharing), await new_link(sharing)
    x, y = "198.51.100.71", "203.0.113.72"
    clock.advance(120)
    assert (await hit(sharing, b["code"], ip=x)).status_code == 302
    assert (await hit(sharing, a["code"], ip=y)).status_code == 302
    assert await sharing.wait_clicks(a["code"], 1) == {"counted": 1}
    assert await sharing.wait_clicks(b["code"], 1) == {"counted": 1}
    clock.advance(60)
    assert (await hit(sharing, a["code"], ip=x)).status_code == 302
    assert (await hit(sharing, b["code"], ip=y)).status_code == 302
    assert (await hit(sharing, a["code"], ip=y)).status_code == 302  # and Y again on a: a duplicate
    assert await sharing.wait_clicks(a["code"], 3) == {"counted": 2, "duplicate": 1}
    assert await sharing.wait_clicks(b["code"], 2) == {"counted": 2}


async def test_a_click_an_hour_after_one_before_midnight_is_a_duplicate(sharing: Sharing, clock: FakeClock) -> None:
    # The visitor's hash changes at midnight (UTC): the second click is judged against the first by
    # yesterday's hash (``visitor_prev``), a pair of its own in the history read, in a batch of its own.
    link = await new_link(sharing)
    clock.now = (clock.now // 86400 + 1) * 86400 - 1800  # 23:30 UTC
    assert (await hit(sharing, link["code"], ip="198.51.100.81")).status_code == 302
    assert await sharing.wait_clicks(link["code"], 1) == {"counted": 1}
    clock.advance(3600)
    assert (await hit(sharing, link["code"], ip="198.51.100.81")).status_code == 302
    assert await sharing.wait_clicks(link["code"], 2) == {"counted": 1, "duplicate": 1}
