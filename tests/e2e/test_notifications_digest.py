"""Issue 18's acceptance, across the real processes: content's HTTP API (SCIM directory, content
targeted at a team), notifications' digest at 9 o'clock (the stack's clock, content's and
notifications', set by the test, never waited for) over SMTP to a real server, parsed with the standard ``email`` package, the LinkedIn
button of the message used through sharing (one share, the network's share dialog with the tracked
link, the same button again shares nothing), and RFC 8058 one-click unsubscribe stopping the next
digest. That share is the person's first: gamification itself awards the badge (from the real
share.created), and notifications posts one Slack and one Teams payload about it to the tenant's
channels (a real receiver on loopback, tests/support/webhooks.py)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from tests.e2e.conftest import E2EStack
from tests.support.helpers import eventually
from tests.support.webhooks import Receiver, serve

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BUTTON = re.compile(r'<a href="([^"]+)"[^>]*>Share on ([^<]+)</a>')


def next_nine(after: datetime) -> datetime:
    """The first 09:00 UTC after ``after`` (the tenant's default hour; its time zone is UTC)."""
    nine = after.replace(hour=9, minute=0, second=0, microsecond=0)
    return nine if nine > after else nine + timedelta(days=1)


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def provision(scim: httpx.AsyncClient, tenant: str, teams: dict[str, list[str]]) -> None:
    """The tenant's directory through content's SCIM provider: each person with an address, each
    team a group (the team the board, the digest and sharing judge by)."""
    for team, people in teams.items():
        ids = []
        for emp in people:
            r = await scim.post(
                "/scim/v2/Users",
                json={"schemas": [SCIM_USER], "userName": f"{emp}@{tenant}.example.com", "externalId": emp},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await scim.post(
            "/scim/v2/Groups",
            json={"schemas": [SCIM_GROUP], "displayName": team, "members": [{"value": i} for i in ids]},
        )
        assert r.status_code == 201, r.text


async def test_a_digest_to_team_a_shares_in_one_click_and_unsubscribes_in_one(stack: E2EStack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    a1, a2, a_off, a_out, b1 = "ann", "amir", "alex", "ava", "bob"  # a_out leaves the programme
    admin = stack.token(tenant, "boss", "admin")
    slack, teams = Receiver(), Receiver()

    def inbox(who: str) -> list[EmailMessage]:
        """The person's digests (their first share also earns them a badge, with its own notice)."""
        return [m for m in stack.mail.to(f"{who}@{tenant}.example.com") if "to share" in str(m["Subject"])]

    async with (
        stack.client("content", admin) as content,
        stack.client("notifications", admin) as notif_admin,
        serve(slack) as slack_url,
        serve(teams) as teams_url,
    ):
        for channel, url in (("slack", slack_url), ("teams", teams_url)):
            r = await notif_admin.put(f"/v1/notifications/channels/{channel}", json={"url": url})
            assert r.status_code == 200, r.text
        r = await content.post("/v1/scim/secret/rotate")
        assert r.status_code in (200, 201), r.text
        scim = httpx.AsyncClient(
            base_url=stack.url("content"), headers={"Authorization": f"Bearer {r.json()['secret']}"}, timeout=10
        )

        async def copied(who: str, team: str) -> bool:
            r = await notif_admin.get(f"/v1/data-export/notifications/{who}")
            member = r.json()["sections"]["member"]["items"] if r.status_code == 200 else []
            if not member or member[0]["email"] is None or team not in member[0].values():
                return False
            return who != a_out or member[0]["enrolled"] is False

        async def digests_composed(who: str) -> int:
            r = await notif_admin.get(f"/v1/data-export/notifications/{who}")
            assert r.status_code == 200, r.text
            return sum(m["category"] == "digest" for m in r.json()["sections"]["messages"]["items"])

        async def publish(**item: Any) -> dict[str, Any]:
            """An item, then a person provisioned after it: content's outbox publishes in order, so
            once notifications holds that person (its data export says), it holds the item too (one
            consumer batch is one transaction). The export shows no items; this is how to know."""
            r = await content.post("/v1/content", json=item)
            assert r.status_code == 201, r.text
            sentinel = f"s-{uuid.uuid4().hex[:6]}"
            await provision(scim, tenant, {f"team-{sentinel}": [sentinel]})
            await eventually(lambda: copied(sentinel, f"team-{sentinel}"), timeout=30, what="the item's copy")
            return dict(r.json())

        async with scim:
            await provision(scim, tenant, {"team-a": [a1, a2, a_off, a_out], "team-b": [b1]})
            for who, frequency in ((a1, "daily"), (a2, "daily"), (a_off, "off"), (a_out, "daily"), (b1, "daily")):
                async with stack.client("notifications", stack.token(tenant, who)) as c:
                    r = await c.put("/v1/notifications/preferences/digest/email", json={"frequency": frequency})
                    assert r.status_code == 200, r.text
            async with stack.client("content", stack.token(tenant, a_out, team="team-a")) as c:
                r = await c.put("/v1/me/membership", json={"enrolled": False, "programme_roles": []})
                assert r.status_code == 200, r.text
            for who, team in ((a1, "team-a"), (a2, "team-a"), (a_off, "team-a"), (a_out, "team-a"), (b1, "team-b")):
                await eventually(lambda w=who, t=team: copied(w, t), timeout=30, what=f"the copy of {who}")  # type: ignore[misc]
            first = await publish(
                title="Alpha <launch> & more",
                url="https://example.com/alpha",
                audience={"teams": ["team-a"]},
                captions={"linkedin": "Proud of this launch", "x": "Launch!"},
            )
            slot = next_nine(datetime.fromisoformat(first["published_at"]))
            try:
                # 9 o'clock: each of team A who asked for a daily digest gets exactly one
                stack.set_clock(slot + timedelta(minutes=1))
                await eventually(lambda: _all(inbox(a1), inbox(a2)), timeout=30, what="team A's digests")
                (ann_msg,) = inbox(a1)
                html = html_of(ann_msg)
                assert "Alpha &lt;launch&gt; &amp; more" in html  # autoescaped
                assert "Alpha <launch> & more" in text_of(ann_msg)
                buttons = {name: unescape(url) for url, name in BUTTON.findall(html)}
                assert set(buttons) == {"LinkedIn", "X"}, html

                # ann uses the LinkedIn button: sharing's page POSTs it; one share, then LinkedIn
                async with httpx.AsyncClient(timeout=10) as browser:
                    page = await browser.get(buttons["LinkedIn"])
                    assert page.status_code == 200 and 'method="post"' in page.text, page.text
                    used = await browser.post(buttons["LinkedIn"])
                    assert used.status_code == 303, used.text
                    target = urlsplit(used.headers["location"])
                    assert (target.netloc, target.path) == ("www.linkedin.com", "/feed/")
                    tracked = parse_qs(target.query)["text"][0].split()[-1]
                    assert tracked.startswith(stack.url("sharing") + "/r/")
                    async with stack.client("sharing", stack.token(tenant, a1)) as sharing:
                        shares = (await sharing.get("/v1/shares")).json()["items"]
                        assert [(s["content_id"], s["network"], s["link"]) for s in shares] == [
                            (first["id"], "linkedin", tracked)
                        ]
                        # the same button again: a page that explains, and no second share
                        again = await browser.post(buttons["LinkedIn"])
                        assert again.status_code == 409 and "already used" in again.text
                        assert len((await sharing.get("/v1/shares")).json()["items"]) == 1
                    followed = await browser.get(tracked)  # the tracked link leads to the item
                    assert followed.status_code == 302
                    assert followed.headers["location"].startswith("https://example.com/alpha")

                    # ann's mail client unsubscribes in one click (RFC 8058): no login, one POST
                    assert ann_msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                    r = await browser.post(
                        str(ann_msg["List-Unsubscribe"]).strip("<>"),
                        content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    assert r.status_code == 200, r.text

                # a second item for team A, published after that 9 o'clock (content's clock too),
                # and the next day's: amir's second digest shows the pass ran for the tenant; ann
                # unsubscribed, so nothing more for her
                await publish(title="Beta", url="https://example.com/beta", audience={"teams": ["team-a"]})
                stack.set_clock(slot + timedelta(days=1, minutes=1))
                await eventually(lambda: _count(inbox(a2), 2), timeout=30, what="amir's second digest")
                beta = text_of(inbox(a2)[1])
                assert "Beta" in beta and "Alpha" not in beta
                # a pass composes a tenant's digests in one transaction: amir's is there, so anyone
                # else's would be too (composed, if not yet handed to SMTP): ann's data export lists
                # every message composed for her
                assert [await digests_composed(who) for who in (a1, a2, a_off, a_out, b1)] == [1, 2, 0, 0, 0]
                assert len(inbox(a1)) == 1 and inbox(a_off) == inbox(a_out) == inbox(b1) == []

                # ann's share was her first: gamification awarded the badge, and the tenant's
                # channels got one post each about it (by now, many seconds after the share, a
                # second post would have come too)
                await eventually(lambda: _all(slack.received, teams.received), timeout=30, what="the badge's posts")
                ((_, slack_post),) = slack.received
                ((_, teams_post),) = teams.received
                (block,) = orjson.loads(slack_post)["blocks"]
                assert "*First share*" in block["text"]["text"], block
                teams_body = orjson.loads(teams_post)
                assert teams_body["type"] == "message"
                (card,) = teams_body["attachments"]
                assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
                assert "**First share**" in card["content"]["body"][0]["text"], card
            finally:
                stack.reset_clock()


async def _all(*boxes: list[Any]) -> bool:
    return all(boxes)


async def _count(box: list[EmailMessage], n: int) -> Any:
    return len(box) >= n
