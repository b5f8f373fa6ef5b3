"""Team channels end to end inside one process: the notifications service (role ``all``) on its own
database and the real broker, gamification's ``badge.earned`` and content's membership produced to
Kafka, and the posts received by real HTTP servers on loopback (tests/support/webhooks.py).

A badge earned produces exactly one Slack payload (Block Kit) and one Teams payload (an Adaptive
Card in the Workflows envelope) for the tenant. The sender's kill window is tested as mail's is
(test_notifications_digest.py): a sender process SIGKILLed at a fail point on each side of the post.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from advocacy_common.errors import Unprocessable
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import MemberErased, MemberUpdated
from advocacy_common.events.gamification import BadgeEarned
from advocacy_notifications.features import chat
from tests.support.helpers import eventually
from tests.support.notifications import Notifications, equals, running_notifications
from tests.support.webhooks import read_body, serve

CONTENT = "/advocacy/content"
GAMIFICATION = "/advocacy/gamification"


@dataclass
class Hook:
    """A Slack or Teams endpoint: records each POST's body; answers the scripted statuses in turn
    (then 200 "ok", as Slack does), with ``Retry-After`` on 429."""

    script: list[int] = field(default_factory=list)
    retry_after: str = "120"
    received: list[Any] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.received.append(orjson.loads(await read_body(receive)))
        status = self.script.pop(0) if self.script else 200
        headers = [(b"retry-after", self.retry_after.encode())] if status == 429 else []
        answer = b"no_service" if status == 404 else b"ok"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
async def notifications(
    pg: Any, private_broker: Any, dev_keys: Any, mint: Callable[..., str]
) -> AsyncIterator[Notifications]:
    # the receivers listen on loopback
    async with running_notifications(pg, private_broker, dev_keys, mint, webhook_allow_private=True) as n:
        yield n


def member(tenant: str, employee: str, *, name: str, leaderboard: str = "ranked") -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        MemberUpdated(
            employee_id=employee, enrolled=True, leaderboard=leaderboard, name=name, updated_at=datetime.now(UTC)
        ),
    )


def badge(tenant: str, employee: str, name: str = "first_share") -> Envelope[Any]:
    return new_event(GAMIFICATION, tenant, BadgeEarned(employee_id=employee, badge=name, earned_at=datetime.now(UTC)))


async def channels(n: Notifications, tenant: str, slack_url: str, teams_url: str) -> None:
    async with n.admin(tenant) as c:
        for channel, url in (("slack", slack_url), ("teams", teams_url)):
            r = await c.put(f"/v1/notifications/channels/{channel}", json={"url": url})
            assert r.status_code == 200, r.text


async def known(n: Notifications, tenant: str, employee: str) -> None:
    sql = "select 1 from members where tenant_id = :t and employee_id = :e"
    await eventually(lambda: n.scalar(sql, t=tenant, e=employee), timeout=20, what="member copied")


async def queued(n: Notifications, tenant: str, count: int) -> None:
    sql = "select count(*) from chat_messages where tenant_id = :t"
    await eventually(lambda: equals(n.scalar(sql, t=tenant), count), timeout=20, what=f"{count} chat messages")


async def test_a_badge_earned_posts_one_slack_and_one_teams_payload(notifications: Notifications) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    slack_hook, teams_hook = Hook(), Hook()
    async with serve(slack_hook) as slack_url, serve(teams_hook) as teams_url:
        await channels(n, tenant, slack_url, teams_url)
        async with n.admin(tenant) as c:
            listed = (await c.get("/v1/notifications/channels")).json()
        assert [x["channel"] for x in listed] == ["slack", "teams"]
        assert all(x["url"].endswith("/…") and x["url"] not in (slack_url, teams_url) for x in listed)

        await n.publish(member(tenant, "ann", name="Ann <Lee> & *co*"))
        await n.publish(member(tenant, "hid", name="Hidden Harry", leaderboard="hidden"))
        await n.publish(member(tenant, "ana", name="Anonymous Ana", leaderboard="anonymous"))
        for who in ("ann", "hid", "ana"):
            await known(n, tenant, who)
        await n.publish(badge(tenant, "ann"))
        await queued(n, tenant, 2)
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert await n.chat_pass(now) == 2
        assert await n.chat_pass(now) == 0

        (slack_body,) = slack_hook.received
        (teams_body,) = teams_hook.received
        assert slack_body["text"] == "Ann &lt;Lee&gt; &amp; *co* earned the First share badge."
        assert slack_body["blocks"][0]["text"] == {
            "type": "mrkdwn",
            "text": "🏅 *Ann &lt;Lee&gt; &amp; *co** earned the *First share* badge.",
        }
        assert teams_body["type"] == "message"
        (attachment,) = teams_body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert attachment["content"]["version"] == "1.4"
        assert attachment["content"]["body"][0]["text"] == (
            "🏅 **Ann \\<Lee\\> \\& \\*co\\*** earned the **First share** badge\\."
        )

        # the same event again (a redelivery, a replay) posts nothing more; a hidden person's badge
        # is not announced; an anonymous person's is, without their name
        await n.publish(badge(tenant, "ann"))
        await n.publish(badge(tenant, "hid"))
        await n.publish(badge(tenant, "ana"))
        await queued(n, tenant, 4)
        await asyncio.sleep(0.5)  # the hidden one's turn has passed too
        assert await n.scalar("select count(*) from chat_messages where tenant_id = :t", t=tenant) == 4
        assert await n.chat_pass(now) == 2
        assert [b["text"] for b in slack_hook.received[1:]] == ["A colleague earned the First share badge."]
        assert len(teams_hook.received) == 2

        # hidden from the leaderboard after a badge was queued: it is not posted
        await n.publish(badge(tenant, "ann", "ten_shares"))
        await queued(n, tenant, 6)
        await n.publish(member(tenant, "ann", name="Ann <Lee> & *co*", leaderboard="hidden"))
        sql = "select count(*) from chat_messages where tenant_id = :t and state = 'cancelled'"
        await eventually(lambda: equals(n.scalar(sql, t=tenant), 2), timeout=20, what="cancelled")
        assert await n.chat_pass(now) == 0

        # the person's data export lists what the channels were told about them
        async with n.admin(tenant) as c:
            r = await c.get("/v1/data-export/notifications/ann")
        assert r.status_code == 200, r.text
        exported = r.json()["sections"]["team_channel_messages"]["items"]
        assert sorted((m["channel"], m["state"]) for m in exported) == [
            ("slack", "cancelled"),
            ("slack", "sent"),
            ("teams", "cancelled"),
            ("teams", "sent"),
        ]
        # another tenant's admin sees none of this tenant's channels
        async with n.admin(f"other-{tenant}") as c:
            assert (await c.get("/v1/notifications/channels")).json() == []
            assert (await c.delete("/v1/notifications/channels/slack")).status_code == 404

        # erasure: every message about the person goes
        await n.publish(new_event(CONTENT, tenant, MemberErased(employee_id="ann", erased_at=datetime.now(UTC))))
        sql = "select count(*) from chat_messages where tenant_id = :t and employee_id = 'ann'"
        await eventually(lambda: equals(n.scalar(sql, t=tenant), 0), timeout=20, what="erased")


async def test_a_webhook_url_is_checked_when_saved_and_when_posted_to(notifications: Notifications) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    strict = n.settings.model_copy(update={"webhook_allow_private": False})
    for url, why in (
        ("http://hooks.slack.com/services/T/B/x", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://u:p@hooks.slack.com/x", "credentials"),
        ("ftp://hooks.slack.com/x", "http(s)"),
        ("https://hooks.slack.com/a b", "spaces"),
        ("https://" + "a" * 3000 + ".com/", "2048"),
        ("https://a..b/x", "cannot resolve"),  # a name IDNA cannot encode: a 422, not a 500
    ):
        with pytest.raises(Unprocessable) as e:
            await chat.checked_url(url, strict)
        assert why in str(e.value), (url, str(e.value))
    async with n.admin(tenant) as c:
        for body in ({"url": "https://127.0.0.1/x", "extra": 1}, {"url": ""}, {"url": "x" * 5000}, {}):
            r = await c.put("/v1/notifications/channels/slack", json=body)
            assert r.status_code == 422, (body, r.text)
        r = await c.put("/v1/notifications/channels/discord", json={"url": "https://example.com/x"})
        assert r.status_code == 422
        r = await c.put("/v1/notifications/channels/slack", json={"url": "gopher://example.com/x"})
        assert r.status_code == 422 and "http(s)" in r.text
        r = await c.put("/v1/notifications/channels/slack", json={"url": "https://" + "a" * 64 + ".com/x"})
        assert r.status_code == 422 and "cannot resolve" in r.text

    # saved while the name's addresses were allowed, posted when they are not (as when a name is
    # re-pointed at an internal address after it was saved): the guard refuses at send time
    hook = Hook()
    async with serve(hook) as url:
        rebound = url.replace("http://127.0.0.1", "https://localhost")
        await channels(n, tenant, rebound, rebound)
        await n.publish(member(tenant, "bo", name="Bo"))
        await known(n, tenant, "bo")
        await n.publish(badge(tenant, "bo"))
        await queued(n, tenant, 2)
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert await n.chat_pass(now, strict) == 0
    assert hook.received == []
    async with n.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("select state, last_error from chat_messages where tenant_id = :t"), {"t": tenant}
            )
        ).all()
    assert {r.state for r in rows} == {"failed"}
    assert all("outbound guard" in r.last_error and "loopback" in r.last_error for r in rows), rows


async def test_retries_honour_retry_after_a_4xx_is_permanent_and_removal_cancels(
    notifications: Notifications,
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    slack_hook, teams_hook = Hook(script=[503, 429]), Hook(script=[404])
    async with serve(slack_hook) as slack_url, serve(teams_hook) as teams_url:
        await channels(n, tenant, slack_url, teams_url)
        await n.publish(member(tenant, "cy", name="Cy"))
        await known(n, tenant, "cy")
        await n.publish(badge(tenant, "cy"))
        await queued(n, tenant, 2)
        t0 = datetime.now(UTC) + timedelta(seconds=1)
        state = "select state, attempts, last_error, next_attempt_at from chat_messages where tenant_id = :t and channel = :c"

        async def row(channel: str) -> Any:
            async with n.engine.connect() as conn:
                return (await conn.execute(sa.text(state), {"t": tenant, "c": channel})).one()

        assert await n.chat_pass(t0) == 0
        teams = await row("teams")  # 404: the URL was revoked; permanent, with Teams' reason
        assert (teams.state, teams.attempts, teams.last_error) == ("failed", 1, "HTTP 404: no_service")
        slack = await row("slack")  # 503: again in 30 s
        assert (slack.state, slack.attempts, slack.next_attempt_at) == ("pending", 1, t0 + timedelta(seconds=30))
        assert await n.chat_pass(t0 + timedelta(seconds=29)) == 0 and len(slack_hook.received) == 1  # not yet
        t1 = t0 + timedelta(seconds=30)
        assert await n.chat_pass(t1) == 0
        slack = await row("slack")  # 429 with Retry-After: 120 -> 120 s rather than the 60 s of the backoff
        assert (slack.state, slack.attempts, slack.next_attempt_at) == ("pending", 2, t1 + timedelta(seconds=120))
        assert await n.chat_pass(t1 + timedelta(seconds=120)) == 1
        assert (await row("slack")).state == "sent" and len(slack_hook.received) == 3
        assert len(teams_hook.received) == 1

        # a pending message of a channel that is removed is never posted
        await n.publish(badge(tenant, "cy", "ten_shares"))
        await queued(n, tenant, 4)
        async with n.admin(tenant) as c:
            assert (await c.delete("/v1/notifications/channels/slack")).status_code == 204
            assert (await c.delete("/v1/notifications/channels/slack")).status_code == 404
            assert [x["channel"] for x in (await c.get("/v1/notifications/channels")).json()] == ["teams"]
        sql = "select state from chat_messages where tenant_id = :t and channel = 'slack' and dedupe_key like '%ten_shares%'"
        assert await n.scalar(sql, t=tenant) == "cancelled"
        assert await n.chat_pass(t1 + timedelta(seconds=121)) == 1  # the Teams one
        assert len(slack_hook.received) == 3 and len(teams_hook.received) == 2


async def test_a_failing_channel_costs_a_pass_one_attempt_and_holds_up_no_other(notifications: Notifications) -> None:
    n = notifications
    down, up = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    down_hook, up_hook = Hook(script=[503] * 10), Hook()
    async with serve(down_hook) as down_url, serve(up_hook) as up_url:
        await channels(n, down, down_url, down_url)
        await channels(n, up, up_url, up_url)
        for tenant in (down, up):
            await n.publish(member(tenant, "eli", name="Eli"))
            await known(n, tenant, "eli")
        for b in ("first_share", "ten_shares", "fifty_shares"):
            await n.publish(badge(down, "eli", b))
        await n.publish(badge(up, "eli"))
        await queued(n, down, 6)
        await queued(n, up, 2)
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert await n.chat_pass(now) == 2  # the healthy tenant's two
    # one attempt per failing channel (Slack's and Teams' URLs are the same receiver here), not six
    assert len(down_hook.received) == 2 and len(up_hook.received) == 2
    tried = "select count(*) from chat_messages where tenant_id = :t and attempts = 1"
    assert await n.scalar(tried, t=down) == 2


async def test_a_kill_before_the_post_posts_once_and_after_it_at_most_twice(notifications: Notifications) -> None:
    """The documented window (features/chat.py): killed before the post, the next pass posts it
    once; killed between the receiver's answer and the record, it is posted again, once, and ends
    sent. Never lost, never posted after it is recorded."""
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    slack_hook, teams_hook = Hook(), Hook()
    async with serve(slack_hook) as slack_url, serve(teams_hook) as teams_url:
        await channels(n, tenant, slack_url, teams_url)
        await n.publish(member(tenant, "dee", name="Dee"))
        await known(n, tenant, "dee")
        await n.publish(badge(tenant, "dee"))
        await queued(n, tenant, 2)
        now = datetime.now(UTC) + timedelta(seconds=1)
        pending = "select count(*) from chat_messages where tenant_id = :t and state = 'pending'"

        def received() -> list[Any]:
            return slack_hook.received + teams_hook.received

        # killed before the first post: nothing reached a receiver, both still pending
        assert "failpoint notifications.webhook.before_send" in await n.sender_killed_at(
            "chat", "notifications.webhook.before_send", now
        )
        assert received() == [] and await n.scalar(pending, t=tenant) == 2
        # killed after a receiver answered the first, before its record: one posted, both pending
        assert "failpoint notifications.webhook.after_send" in await n.sender_killed_at(
            "chat", "notifications.webhook.after_send", now
        )
        assert len(received()) == 1 and await n.scalar(pending, t=tenant) == 2
        first = received()[0]
        # the next pass posts both; the one in the window goes a second time, and no more
        assert await n.chat_pass(now) == 2
        assert await n.scalar(pending, t=tenant) == 0
        assert await n.chat_pass(now) == 0
        assert sorted((len(slack_hook.received), len(teams_hook.received))) == [1, 2]
        assert sum(b == first for b in received()) == 2
        sent = "select count(*) from chat_messages where tenant_id = :t and state = 'sent'"
        assert await n.scalar(sent, t=tenant) == 2
