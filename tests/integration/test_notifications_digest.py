"""The digest, end to end inside one process: the notifications service (role ``all``) on its own
database and the real broker, content's events produced to Kafka, the scheduler driven by an
injected clock, and the mail handed over SMTP to a real aiosmtpd server and parsed back with the
standard ``email`` package.

Publishing content targeted at team A sends exactly one digest to each member of team A who asked
for daily digests, nothing to team B or to those who opted out; the message's one-click unsubscribe
(RFC 8058) stops the next digest; an unreachable relay delays mail and loses none.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import Audience, ContentPublished, MemberErased, MemberProvisioned
from advocacy_dev.devstack.net import free_port
from advocacy_notifications.adapters import links
from advocacy_notifications.adapters.smtp import RelayUnavailable
from advocacy_notifications.features import mail
from tests.support.helpers import eventually
from tests.support.notifications import Notifications, equals, running_notifications
from tests.support.smtp import Inbox, smtp_server

CONTENT = "/advocacy/content"
# How long a wait for the worker (a consumer group joining, a batch applied) may take under load: a
# bound, not a speed claim (the answer comes as soon as it is there).
SETTLE = 60


@pytest.fixture(scope="module")
def smtp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def inbox(smtp_port: int) -> Iterator[Inbox]:
    with smtp_server(smtp_port) as box:
        yield box


@pytest.fixture(scope="module")
async def notifications(
    pg: Any, private_broker: Any, dev_keys: Any, mint: Callable[..., str], smtp_port: int
) -> AsyncIterator[Notifications]:
    async with running_notifications(pg, private_broker, dev_keys, mint, smtp_port=smtp_port) as n:
        yield n


def person(employee: str, tenant: str, team: str, *, active: bool = True) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        MemberProvisioned(
            employee_id=employee,
            active=active,
            user_name=f"{employee}@{tenant}.example.com",
            display_name=employee.title(),
            team=team,
            updated_at=datetime.now(UTC),
        ),
    )


def content(tenant: str, content_id: str, teams: list[str], published_at: datetime) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        ContentPublished(
            content_id=content_id,
            title=f"News <{content_id}> & more",
            url=f"https://example.com/{content_id}",
            slug=content_id,
            audience=Audience(teams=teams),
            published_at=published_at,
        ),
    )


async def choose(n: Notifications, tenant: str, employee: str, frequency: str) -> None:
    async with n.client(n.mint(tenant, employee, "employee")) as c:
        r = await c.put("/v1/notifications/preferences/digest/email", json={"frequency": frequency})
        assert r.status_code == 200, r.text


async def one_click(n: Notifications, msg: EmailMessage) -> None:
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(msg["List-Unsubscribe"]).strip("<>")
    parts = urlsplit(url)
    async with n.client() as c:  # no login: the signed token says who
        r = await c.post(
            f"{parts.path}?{parts.query}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 200, r.text
    assert r.json()["frequency"] == "off"


def next_nine(after: datetime, days: int = 1) -> datetime:
    """The first 09:00 UTC (the tenant's default hour, time zone UTC) at least ``days`` days after."""
    nine = after.replace(hour=9, minute=0, second=0, microsecond=0)
    while nine <= after:
        nine += timedelta(days=1)
    return nine + timedelta(days=days - 1)


async def digests_queued(n: Notifications, tenant: str, people: list[str], content_id: str) -> datetime:
    """``people`` of team A choose daily digests and content for team A is published now; once the
    service has copied both, the digests are composed at the next slot (one each): that slot."""
    for who in people:
        await n.publish(person(who, tenant, "A"))
        await choose(n, tenant, who, "daily")
    published = datetime.now(UTC)
    await n.publish(content(tenant, content_id, ["A"], published))
    members = "select count(*) from members where tenant_id = :t"
    await eventually(lambda: equals(n.scalar(members, t=tenant), len(people)), timeout=SETTLE, what="members")
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t", t=tenant), timeout=SETTLE, what="content"
    )
    slot = next_nine(published)
    assert await n.compose_digests(slot) == len(people)
    return slot


async def test_team_a_daily_subscribers_get_one_digest_and_one_click_stops_the_next(
    notifications: Notifications, inbox: Inbox
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    a1, a2, a_opted_out, a_weekly, b1 = "ann", "amir", "alex", "ada", "bob"
    for who, team in ((a1, "A"), (a2, "A"), (a_opted_out, "A"), (a_weekly, "A"), (b1, "B")):
        await n.publish(person(who, tenant, team))
    for who in (a1, a2, b1):
        await choose(n, tenant, who, "daily")
    await choose(n, tenant, a_opted_out, "off")
    # a_weekly chose nothing: the tenant's default (weekly) applies, not due on a daily slot

    published = datetime.now(UTC)
    item = f"c-{uuid.uuid4().hex[:8]}"
    await n.publish(content(tenant, item, ["A"], published))
    known = "select count(*) from members where tenant_id = :t"
    await eventually(lambda: equals(n.scalar(known, t=tenant), 5), timeout=SETTLE, what="members copied")
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t", t=tenant), timeout=SETTLE, what="content"
    )

    slot = next_nine(published)
    before = len(inbox.messages)
    queued = await n.digest_pass(slot)
    assert queued == 2
    # a second pass at the same slot composes and sends nothing more
    assert await n.digest_pass(slot + timedelta(minutes=5)) == 0
    assert len(inbox.messages) - before == 2

    def address(who: str) -> str:
        return f"{who}@{tenant}.example.com"

    for who in (a1, a2):
        (msg,) = inbox.to(address(who))
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        assert f"News <{item}> & more" in text.get_content()
        assert f"News &lt;{item}&gt; &amp; more" in html.get_content()  # autoescaped
        assert f"https://example.com/{item}" in text.get_content()
    for who in (a_opted_out, a_weekly, b1):
        assert inbox.to(address(who)) == []

    # ann clicks her mail client's unsubscribe; then new content for team A
    (ann_msg,) = inbox.to(address(a1))
    await one_click(n, ann_msg)
    await one_click(n, ann_msg)  # twice changes nothing
    async with n.client(n.mint(tenant, a1, "employee")) as c:
        prefs = (await c.get("/v1/notifications/preferences")).json()["items"]
    # the digest's row (other categories are listed too)
    assert {(p["category"], p["channel"], p["frequency"], p["chosen"]) for p in prefs if p["category"] == "digest"} == {
        ("digest", "email", "off", True)
    }

    second = f"c-{uuid.uuid4().hex[:8]}"
    await n.publish(content(tenant, second, ["A"], slot + timedelta(hours=1)))
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t and content_id = :c", t=tenant, c=second),
        timeout=SETTLE,
        what="second item",
    )
    assert await n.digest_pass(next_nine(slot)) == 1
    assert len(inbox.to(address(a1))) == 1  # unsubscribed: nothing new
    (_, amir_second) = inbox.to(address(a2))
    body = amir_second.get_body(preferencelist=("plain",))
    assert body is not None and second in body.get_content() and item not in body.get_content()


async def test_an_unsubscribe_link_we_did_not_sign_is_a_400_and_changes_nothing(notifications: Notifications) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await choose(n, tenant, "gus", "daily")
    forged = links.sign(b"not-our-key" * 3, {"t": tenant, "e": "gus", "c": "digest", "ch": "email"})
    async with n.client() as c:
        for token in (forged, "u1.x.y", "x" * 2000, "é"):
            for method in ("GET", "POST"):
                r = await c.request(method, "/v1/notifications/unsubscribe", params={"token": token})
                assert r.status_code in (400, 422), (method, token[:20], r.status_code, r.text)
        r = await c.get("/v1/notifications/unsubscribe")
        assert r.status_code == 422
    async with n.client(n.mint(tenant, "gus", "employee")) as c:
        (pref,) = [
            p for p in (await c.get("/v1/notifications/preferences")).json()["items"] if p["category"] == "digest"
        ]
    assert pref["frequency"] == "daily"


async def test_an_unreachable_relay_delays_mail_and_loses_none(
    notifications: Notifications, inbox: Inbox, smtp_port: int
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    slot = await digests_queued(n, tenant, ["cy"], "c-outage")
    down = n.settings.model_copy(update={"smtp_port": free_port()})  # nothing listens there
    with pytest.raises(RelayUnavailable):
        await mail.deliver_pending(n.runtime.sessionmaker, down, clock=lambda: slot)
    state = "select state from messages where tenant_id = :t"
    assert await n.scalar(state, t=tenant) == "pending"
    # the relay is back: the message goes, once
    assert await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: slot) == 1
    assert await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: slot) == 0
    assert await n.scalar(state, t=tenant) == "sent"
    assert len(inbox.to(f"cy@{tenant}.example.com")) == 1


async def test_a_kill_before_the_send_sends_once_and_after_it_may_send_twice(
    notifications: Notifications, inbox: Inbox
) -> None:
    """The documented window (features/mail.py): killed before the hand-over, the message is sent
    once by the next pass; killed between the relay's acceptance and the record, it is sent again,
    with the same Message-ID. Never lost either way, and never sent after it is recorded."""
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    slot = await digests_queued(n, tenant, ["eve", "fay"], "c-kill")
    pending = "select count(*) from messages where tenant_id = :t and state = 'pending'"

    def received() -> list[EmailMessage]:
        return [m for rcpt, m in inbox.messages if any(r.endswith(f"@{tenant}.example.com") for r in rcpt)]

    # killed before the first hand-over: nothing reached the relay, both still pending
    assert "failpoint notifications.mail.before_send" in await n.sender_killed_at(
        "mail", "notifications.mail.before_send", slot
    )
    assert received() == [] and await n.scalar(pending, t=tenant) == 2
    # killed after the relay accepted the first, before its record: one delivered, still pending
    assert "failpoint notifications.mail.after_send" in await n.sender_killed_at(
        "mail", "notifications.mail.after_send", slot
    )
    assert len(received()) == 1 and await n.scalar(pending, t=tenant) == 2
    first = received()[0]
    # the next pass sends both; the one in the window goes a second time, with the same Message-ID
    assert await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: slot) == 2
    assert await n.scalar(pending, t=tenant) == 0
    assert await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: slot) == 0
    got = received()
    assert len(got) == 3
    again = [m for m in got[1:] if m["Message-ID"] == first["Message-ID"]]
    assert len(again) == 1 and again[0]["To"] == first["To"]
    assert len({m["Message-ID"] for m in got}) == 2


async def test_a_hard_bounce_suppresses_the_address_and_an_opt_out_stops_queued_mail(
    notifications: Notifications, inbox: Inbox
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    slot = await digests_queued(n, tenant, ["bounce-ivy", "jo", "kim"], "c-one")
    # before the sender runs, jo is deactivated in the directory: her queued digest never goes
    await n.publish(person("jo", tenant, "A", active=False))
    state = "select state from messages where tenant_id = :t and employee_id = :e"
    await eventually(lambda: equals(n.scalar(state, t=tenant, e="jo"), "cancelled"), timeout=SETTLE, what="cancelled")
    assert await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: slot) == 1  # kim's
    assert await n.scalar(state, t=tenant, e="bounce-ivy") == "failed"
    assert await n.scalar("select count(*) from suppressions where tenant_id = :t", t=tenant) == 1

    # the next day: kim gets her digest, the bounced address and the deactivated person nothing
    await n.publish(content(tenant, "c-two", ["A"], slot + timedelta(hours=1)))
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t and content_id = 'c-two'", t=tenant),
        timeout=SETTLE,
        what="second item",
    )
    assert await n.digest_pass(next_nine(slot)) == 1
    counts = "select employee_id, count(*) from messages where tenant_id = :t group by employee_id order by 1"
    async with n.engine.connect() as conn:
        rows = (await conn.execute(sa.text(counts), {"t": tenant})).all()
    assert [tuple(r) for r in rows] == [("bounce-ivy", 1), ("jo", 1), ("kim", 2)]
    assert len(inbox.to(f"kim@{tenant}.example.com")) == 2
    assert inbox.to(f"jo@{tenant}.example.com") == [] and inbox.to(f"bounce-ivy@{tenant}.example.com") == []


async def test_erasure_forgets_the_person_and_their_pending_mail(notifications: Notifications) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await n.publish(person("dee", tenant, "A"))
    await choose(n, tenant, "dee", "daily")
    await n.publish(new_event(CONTENT, tenant, MemberErased(employee_id="dee", erased_at=datetime.now(UTC))))
    await n.publish(person("dee", tenant, "A"))  # a late directory event brings nothing back
    await eventually(
        lambda: n.scalar("select 1 from erasures where tenant_id = :t", t=tenant), timeout=SETTLE, what="erasure"
    )
    await asyncio.sleep(0.5)
    for table in ("members", "preferences", "digest_states", "messages"):
        assert await n.scalar(f"select count(*) from {table} where tenant_id = :t", t=tenant) == 0, table


async def test_a_tenant_override_and_the_readers_language_word_the_composed_digest(
    notifications: Notifications, inbox: Inbox
) -> None:
    """Issue 18: templates overridden per tenant (a malformed override is a 422 with the line) and
    localised (English and German, chosen by the member or the tenant); a stored override that
    fails at compose time falls back to the built-in template, and the message still goes."""
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admin = n.mint(tenant, "boss", "admin")
    template = "/v1/notifications/templates/digest/de"
    none = {"subject": None, "text": None, "html": None}  # null parts: the built-in ones
    async with n.client(admin) as c:
        bad = await c.put(
            template, json={**none, "text": "Hallo {{ name }}\n{% for i in items %}\n{{ i.title }\n{% endfor %}"}
        )
        assert bad.status_code == 422 and "text, line 3" in bad.json()["error"]["message"], bad.text
        unknown = await c.put(template, json={**none, "subject": "ok", "html": "<p>\n{{ salary }}</p>"})
        assert unknown.status_code == 422 and "html, line 2" in unknown.json()["error"]["message"], unknown.text
        assert "salary" in unknown.json()["error"]["message"]
        costly = await c.put(template, json={**none, "text": "{% for i in range(100000) %}x{% endfor %}"})
        assert costly.status_code == 422, costly.text
        assert (await c.get(template)).json()["updated_at"] is None  # nothing refused was saved
        assert (await c.put(template, json={"subject": "x"})).status_code == 422  # a PUT has all three parts
        subject = "{{ items|length|number }} Neuigkeiten für {{ name }} (ACME)"
        ok = await c.put(template, json={**none, "subject": subject})
        assert ok.status_code == 200, ok.text
        assert (await c.get(template)).json()["subject"] == subject
        assert [(o["name"], o["language"]) for o in (await c.get("/v1/notifications/templates")).json()["items"]] == [
            ("digest", "de")
        ]
        r = await c.put("/v1/notifications/defaults/language", json={"language": "de"})
        assert r.status_code == 200 and r.json() == {"language": "de"}
        assert (await c.put("/v1/notifications/defaults/language", json={"language": "xx"})).status_code == 422
    for who in ("uwe", "eva"):
        await n.publish(person(who, tenant, "A"))
        await choose(n, tenant, who, "daily")
    async with n.client(n.mint(tenant, "eva", "employee")) as c:  # eva chooses English
        assert (await c.get("/v1/notifications/language")).json() == {"language": "de", "chosen": False}
        r = await c.put("/v1/notifications/language", json={"language": "en"})
        assert r.status_code == 200 and r.json() == {"language": "en", "chosen": True}
    # ida chose nothing, but the directory says she reads English (SCIM preferredLanguage)
    ida = MemberProvisioned(
        employee_id="ida",
        active=True,
        user_name=f"ida@{tenant}.example.com",
        display_name="Ida",
        team="A",
        updated_at=datetime.now(UTC),
        preferred_language="en-GB",
    )
    await n.publish(new_event(CONTENT, tenant, ida))
    await choose(n, tenant, "ida", "daily")
    await eventually(
        lambda: equals(
            n.scalar("select directory_language from members where tenant_id = :t and employee_id = 'ida'", t=tenant),
            "en-GB",
        ),
        timeout=SETTLE,
        what="ida's language",
    )
    async with n.client(n.mint(tenant, "ida", "employee")) as c:
        assert (await c.get("/v1/notifications/language")).json() == {"language": "en", "chosen": False}

    published = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    await n.publish(content(tenant, "c-de", ["A"], published))
    await eventually(
        lambda: equals(n.scalar("select count(*) from members where tenant_id = :t", t=tenant), 3),
        timeout=SETTLE,
        what="members",
    )
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t", t=tenant), timeout=SETTLE, what="content"
    )
    slot = next_nine(published)
    assert await n.digest_pass(slot) == 3
    (uwe,) = inbox.to(f"uwe@{tenant}.example.com")
    assert uwe["Subject"] == "1 Neuigkeiten für Uwe (ACME)"  # the tenant's German override
    text = uwe.get_body(preferencelist=("plain",))
    assert text is not None
    body = text.get_content()  # the built-in German text: the override has only a subject
    assert "Hallo Uwe" in body and "etwas Neues zum Teilen" in body and f"({published:%d.%m.%Y})" in body
    # the page behind uwe's unsubscribe link (no login) is in his language too
    link = urlsplit(str(uwe["List-Unsubscribe"]).strip("<>"))
    async with n.client() as c:
        page = await c.get(f"{link.path}?{link.query}")
    assert page.status_code == 200 and "Diese Nachrichten nicht mehr erhalten?" in page.text
    (eva,) = inbox.to(f"eva@{tenant}.example.com")
    assert eva["Subject"] == "New to share: News <c-de> & more"  # English: no English override
    (ida_msg,) = inbox.to(f"ida@{tenant}.example.com")
    assert ida_msg["Subject"] == "New to share: News <c-de> & more"  # the directory's language

    # a stored override that fails now (it cannot be saved like this): the built-in subject, sent anyway
    async with n.engine.begin() as conn:
        await conn.execute(
            sa.text("update template_overrides set subject = '{{ nope }' where tenant_id = :t"), {"t": tenant}
        )
    await n.publish(content(tenant, "c-de-2", ["A"], slot + timedelta(hours=1)))
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t and content_id = 'c-de-2'", t=tenant),
        timeout=SETTLE,
        what="second item",
    )
    assert await n.digest_pass(next_nine(slot)) == 3
    (_, uwe_second) = inbox.to(f"uwe@{tenant}.example.com")
    assert uwe_second["Subject"] == "Neu zum Teilen: News <c-de-2> & more"
    async with n.client(admin) as c:
        assert (await c.delete(template)).status_code == 204
        assert (await c.delete(template)).status_code == 204  # nothing to remove: the same answer
        assert (await c.get(template)).json() == {
            "name": "digest",
            "language": "de",
            "subject": None,
            "text": None,
            "html": None,
            "updated_at": None,
        }


async def test_a_badge_through_the_broker_is_one_notice_by_mail_and_a_redelivery_none(
    notifications: Notifications, inbox: Inbox
) -> None:
    """Per-event notices, wired as deployed: gamification's event on the broker, the worker's
    consumer (group ``notifications-gamification``), the notice queued, handed to SMTP and parsed
    back. The same event published again (same id) sends nothing more."""
    from advocacy_common.events.gamification import BadgeEarned

    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await n.publish(person("gia", tenant, "A"))
    known = "select count(*) from members where tenant_id = :t"
    await eventually(lambda: equals(n.scalar(known, t=tenant), 1), timeout=SETTLE, what="member copied")
    now = datetime.now(UTC)
    first = new_event(
        "/advocacy/gamification", tenant, BadgeEarned(employee_id="gia", badge="ten_shares", earned_at=now)
    )
    again = new_event("/advocacy/gamification", tenant, BadgeEarned(employee_id="gia", badge="streak", earned_at=now))
    # the redelivery, then another badge under the same key: once that one is in, so was the redelivery
    for env in (first, first, again):
        await n.publish(env)
    queued = "select count(*) from messages where tenant_id = :t and category = 'badges'"
    await eventually(lambda: equals(n.scalar(queued, t=tenant), 2), timeout=SETTLE, what="notices queued")
    await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: now + timedelta(seconds=5))
    got = sorted(str(m["Subject"]) for m in inbox.to(f"gia@{tenant}.example.com"))
    assert got == ["You earned a badge: Streak", "You earned a badge: Ten shares"]
    assert await n.scalar(queued, t=tenant) == 2


async def test_several_smtp_sessions_send_each_message_once(notifications: Notifications, inbox: Inbox) -> None:
    """smtp_connections and send_group above 1 (the benchmark's settings): each session claims its
    groups with SKIP LOCKED, so each message goes once, and a pass sends no more than send_batch."""
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    people = [f"p{i}" for i in range(7)]
    slot = await digests_queued(n, tenant, people, "c-many")
    three = n.settings.model_copy(update={"smtp_connections": 3, "send_group": 2, "send_batch": 5})
    assert await mail.deliver_pending(n.runtime.sessionmaker, three, clock=lambda: slot) == 5
    assert await mail.deliver_pending(n.runtime.sessionmaker, three, clock=lambda: slot) == 2
    assert await mail.deliver_pending(n.runtime.sessionmaker, three, clock=lambda: slot) == 0
    got = [m for rcpt, m in inbox.messages if any(r.endswith(f"@{tenant}.example.com") for r in rcpt)]
    assert sorted(str(m["To"]).split("@")[0] for m in got) == people
    assert len({m["Message-ID"] for m in got}) == 7
