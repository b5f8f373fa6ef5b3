"""Sharing's copies of what decides a board (content's audience, membership, roll-out waves), kept
from content's events on the real broker and database, and the share check made against them:
a share the board would not show is a 403 with a reason code (issue 13)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from advocacy_common.events import new_event
from advocacy_common.events.content import Audience, ContentPublished, MemberErased, MemberUpdated, WaveUpdated
from tests.support.sharing import Sharing

SOURCE = "/advocacy/content"


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


async def publish_targeted(sharing: Sharing, tenant: str, content: str, **audience: list[str]) -> None:
    await sharing.publish(
        new_event(
            SOURCE,
            tenant,
            ContentPublished(
                content_id=content,
                title="For some",
                url="https://example.com/for-some",
                slug="for-some",
                audience=Audience(**audience),
                published_at=datetime.now(UTC),
            ),
        )
    )
    known = "select 1 from content_copies where tenant_id = :t and content_id = :c"
    assert await until(lambda: sharing.scalar(known, t=tenant, c=content))


async def try_share(sharing: Sharing, tenant: str, sub: str, content: str, team: str, network: str = "x") -> Any:
    token = sharing.mint(tenant, sub, "employee", team=team, name=sub.title())
    async with sharing.client(token) as c:
        return await c.post("/v1/shares", json={"content_id": content, "network": network})


def ids() -> tuple[str, str]:
    return f"t-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"


async def test_the_audience_is_copied_and_another_team_is_refused(sharing: Sharing) -> None:
    tenant, content = ids()
    await publish_targeted(sharing, tenant, content, teams=["b"], programme_roles=[])
    audience = await sharing.scalar(
        "select audience from content_copies where tenant_id = :t and content_id = :c", t=tenant, c=content
    )
    assert audience["teams"] == ["b"]
    r = await try_share(sharing, tenant, "alice", content, team="a")
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "not_targeted" and error["message"] and error["details"][0]["field"] == "content_id"
    assert await sharing.scalar("select count(*) from shares where tenant_id = :t", t=tenant) == 0
    r = await try_share(sharing, tenant, "bob", content, team="b")
    assert r.status_code == 201, r.text


async def test_membership_copies_decide_opt_out_and_programme_roles(sharing: Sharing) -> None:
    tenant, content = ids()
    _, champions_only = ids()
    await publish_targeted(sharing, tenant, content)
    await publish_targeted(sharing, tenant, champions_only, programme_roles=["champion"])
    at = datetime.now(UTC)
    await sharing.publish(new_event(SOURCE, tenant, MemberUpdated(employee_id="carol", enrolled=False, updated_at=at)))
    await sharing.publish(
        new_event(
            SOURCE,
            tenant,
            MemberUpdated(employee_id="dan", enrolled=True, programme_roles=["champion"], updated_at=at),
        )
    )
    rows = "select count(*) from member_copies where tenant_id = :t"
    assert await until(lambda: _equals(sharing.scalar(rows, t=tenant), 2))
    r = await try_share(sharing, tenant, "carol", content, team="a")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "opted_out")
    r = await try_share(sharing, tenant, "erin", champions_only, team="a")  # no membership row: no role
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_enrolled")
    assert (await try_share(sharing, tenant, "dan", champions_only, team="a")).status_code == 201
    # an older update arriving late does not undo a newer one
    await sharing.publish(
        new_event(
            SOURCE, tenant, MemberUpdated(employee_id="carol", enrolled=True, updated_at=at - timedelta(minutes=1))
        )
    )
    await sharing.publish(
        new_event(
            SOURCE, tenant, MemberUpdated(employee_id="carol", enrolled=True, updated_at=at + timedelta(minutes=1))
        )
    )
    enrolled = "select enrolled from member_copies where tenant_id = :t and employee_id = 'carol'"
    assert await until(lambda: sharing.scalar(enrolled, t=tenant))
    assert (await try_share(sharing, tenant, "carol", content, team="a")).status_code == 201
    # erasure forgets the membership copy
    await sharing.publish(new_event(SOURCE, tenant, MemberErased(employee_id="dan", erased_at=datetime.now(UTC))))
    dan = "select count(*) from member_copies where tenant_id = :t and employee_id = 'dan'"
    assert await until(lambda: _equals(sharing.scalar(dan, t=tenant), 0))


async def test_wave_copies_gate_shares_and_a_deleted_wave_stops_gating(sharing: Sharing) -> None:
    tenant, content = ids()
    await publish_targeted(sharing, tenant, content)
    now = datetime.now(UTC)

    def wave(wave_id: str, starts_at: datetime, *, deleted: bool = False, at: datetime | None = None) -> Any:
        return new_event(
            SOURCE,
            tenant,
            WaveUpdated(
                wave_id=wave_id,
                name=wave_id,
                starts_at=starts_at,
                teams=["a"] if wave_id == "pilot" else ["b"],
                employees=["frank"],
                deleted=deleted,
                updated_at=at or datetime.now(UTC),
            ),
        )

    await sharing.publish(wave("pilot", now - timedelta(days=1)))
    await sharing.publish(wave("later", now + timedelta(days=7)))
    waves = "select count(*) from wave_copies where tenant_id = :t and not deleted"
    assert await until(lambda: _equals(sharing.scalar(waves, t=tenant), 2))
    assert (await try_share(sharing, tenant, "gina", content, team="a")).status_code == 201  # pilot started
    r = await try_share(sharing, tenant, "hank", content, team="b")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "wave_not_started")
    r = await try_share(sharing, tenant, "ivan", content, team="c")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_in_wave")
    # frank is named in both waves: erasure takes him out of the copies
    await sharing.publish(new_event(SOURCE, tenant, MemberErased(employee_id="frank", erased_at=datetime.now(UTC))))
    named = "select count(*) from wave_copies where tenant_id = :t and 'frank' = any(employees)"
    assert await until(lambda: _equals(sharing.scalar(named, t=tenant), 0))
    # deleting every wave opens the programme to everyone again (as content's board)
    await sharing.publish(wave("pilot", now - timedelta(days=1), deleted=True))
    await sharing.publish(wave("later", now + timedelta(days=7), deleted=True))
    assert await until(lambda: _equals(sharing.scalar(waves, t=tenant), 0))
    assert (await try_share(sharing, tenant, "ivan", content, team="c")).status_code == 201


async def test_an_expired_item_is_refused_with_its_reason(sharing: Sharing) -> None:
    tenant, content = ids()
    await sharing.publish(
        new_event(
            SOURCE,
            tenant,
            ContentPublished(
                content_id=content,
                title="Soon gone",
                url="https://example.com/soon-gone",
                slug="soon-gone",
                published_at=datetime.now(UTC) - timedelta(days=2),
                expires_at=datetime.now(UTC) - timedelta(seconds=1),
            ),
        )
    )
    known = "select 1 from content_copies where tenant_id = :t and content_id = :c"
    assert await until(lambda: sharing.scalar(known, t=tenant, c=content))
    r = await try_share(sharing, tenant, "alice", content, team="a")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "expired")


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return bool(await value == expected)


# -- one-click share buttons (issue 18, ADR 0016) ----------------------------------------------------------
def _button(tenant: str, sub: str, content: str, *, team: str | None = None, **over: Any) -> str:
    from advocacy_common import action_links
    from advocacy_common.networks import Network

    args: dict[str, Any] = {"network": Network.linkedin, "now": datetime.now(UTC), "team": team} | over
    return action_links.sign(
        action_links.DEV_PRIVATE_KEY, tenant_id=tenant, employee_id=sub, content_id=content, **args
    )


async def _shares(sharing: Sharing, tenant: str) -> int:
    return int(await sharing.scalar("select count(*) from shares where tenant_id = :t", t=tenant))


async def test_a_share_button_shares_once_then_explains(sharing: Sharing) -> None:
    from urllib.parse import parse_qs, urlsplit

    tenant, content = ids()
    await publish_targeted(sharing, tenant, content, teams=["a"], programme_roles=[])
    token = _button(tenant, "alice", content, team="a")
    async with sharing.client() as c:
        # GET (what a mail scanner fetches) changes nothing: a page that POSTs the same link
        page = await c.get("/v1/share-actions", params={"token": token})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], page.text
        assert 'method="post"' in page.text and "Share on LinkedIn" in page.text and "For some" in page.text
        assert page.headers["cache-control"] == "no-store"
        # a button of a German message: its page is German too (the token carries the language)
        german = await c.get("/v1/share-actions", params={"token": _button(tenant, "alice", content, language="de")})
        assert german.status_code == 200 and '<html lang="de">' in german.text and "Auf LinkedIn teilen" in german.text
        assert await _shares(sharing, tenant) == 0

        r = await c.post("/v1/share-actions", params={"token": token})
        assert r.status_code == 303, r.text
        assert r.headers["referrer-policy"] == "no-referrer"
        share = (
            await sharing.rows("select code, employee_id, team, network from shares where tenant_id = :t", t=tenant)
        )[0]
        assert (share.employee_id, share.team, share.network) == ("alice", "a", "linkedin")
        target = urlsplit(r.headers["location"])
        assert (target.scheme, target.netloc, target.path) == ("https", "www.linkedin.com", "/feed/")
        assert parse_qs(target.query)["text"][0].endswith(f"/r/{share.code}")
        used = "select share_id from action_link_uses where tenant_id = :t"
        assert await sharing.scalar(used, t=tenant)
        assert await sharing.scalar("select count(*) from outbox where tenant_id = :t", t=tenant) >= 1

        # the same button again: a page that explains, no second share
        again = await c.post("/v1/share-actions", params={"token": token})
        assert again.status_code == 409 and "already used" in again.text, again.text
        assert f"/r/{share.code}" in again.text.replace("%2F", "/")
        shown = await c.get("/v1/share-actions", params={"token": token})
        assert shown.status_code == 409 and "already used" in shown.text
        # another button for the same item and network finds the same share
        other = await c.post("/v1/share-actions", params={"token": _button(tenant, "alice", content, team="a")})
        assert other.status_code == 303
        assert await _shares(sharing, tenant) == 1


async def test_a_share_button_keeps_every_check_of_a_share(sharing: Sharing) -> None:
    tenant, content = ids()
    await publish_targeted(sharing, tenant, content, teams=["a"], programme_roles=[])
    outsider = _button(tenant, "bob", content, team="b")
    async with sharing.client() as c:
        r = await c.post("/v1/share-actions", params={"token": outsider})
        assert r.status_code == 403 and "text/html" in r.headers["content-type"], r.text
        assert "cannot be shared" in r.text and "/board" in r.text
        # refused: the link is not spent (nothing recorded), nor is a share made
        assert await sharing.scalar("select count(*) from action_link_uses where tenant_id = :t", t=tenant) == 0
        unknown = await c.post("/v1/share-actions", params={"token": _button(tenant, "a1", "no-such-item", team="a")})
        assert unknown.status_code == 403 and "cannot be shared" in unknown.text
        await sharing.publish(new_event(SOURCE, tenant, MemberErased(employee_id="gone", erased_at=datetime.now(UTC))))
        erased = "select count(*) from erasures where tenant_id = :t"
        assert await until(lambda: sharing.scalar(erased, t=tenant))
        r = await c.post("/v1/share-actions", params={"token": _button(tenant, "gone", content, team="a")})
        assert r.status_code == 403 and "cannot be shared" in r.text, r.text
        assert await _shares(sharing, tenant) == 0


async def test_expired_altered_and_garbage_links_get_a_page_never_an_error(sharing: Sharing) -> None:
    tenant, content = ids()
    await publish_targeted(sharing, tenant, content)
    expired = _button(tenant, "carol", content, now=datetime.now(UTC) - timedelta(hours=3), ttl=timedelta(hours=1))
    head, body, sig = _button(tenant, "carol", content).split(".")
    altered = f"{head}.{body[:-2]}AA.{sig}"
    async with sharing.client() as c:
        for method in ("GET", "POST"):
            r = await c.request(method, "/v1/share-actions", params={"token": expired})
            assert r.status_code == 410 and "expired" in r.text, r.text
            for bad in (altered, "", "x" * 5000, "a.b.c", "é.é.é"):
                r = await c.request(method, "/v1/share-actions", params={"token": bad})
                assert r.status_code == 400 and "not valid" in r.text, (method, bad[:20], r.text)
                assert "text/html" in r.headers["content-type"]
            r = await c.request(method, "/v1/share-actions")
            assert r.status_code == 400 and "not valid" in r.text
            # a link that says nothing: the browser's language
            r = await c.request(method, "/v1/share-actions", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
            assert r.status_code == 400 and "Dieser Link ist ungültig" in r.text, r.text
    assert await _shares(sharing, tenant) == 0


async def test_share_buttons_are_rate_limited_per_address_with_a_page(sharing: Sharing) -> None:
    from advocacy_sharing.adapters.ratelimit import RateLimiter

    tenant, content = ids()
    before = getattr(sharing.app.state, "share_action_limiter", None)
    sharing.app.state.share_action_limiter = RateLimiter(limit=3)  # the route's limiter, made small
    try:
        async with sharing.client() as c:
            got = [(await c.get("/v1/share-actions", params={"token": "x"})).status_code for _ in range(5)]
            assert got[:3] == [400, 400, 400] and got[3:] == [429, 429], got
            r = await c.post("/v1/share-actions", params={"token": _button(tenant, "a", content)})
            assert r.status_code == 429 and r.headers["retry-after"] and "text/html" in r.headers["content-type"]
            assert "try the button again in a minute" in r.text.lower()
        assert await _shares(sharing, tenant) == 0
    finally:
        sharing.app.state.share_action_limiter = before
