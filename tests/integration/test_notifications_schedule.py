"""Scheduled notices against the real PostgreSQL and broker: the nudge after N days without a share,
the notice about content about to expire, roll-out waves in the digest (content's own predicate),
and quiet hours holding mail until they end. The scheduler passes take the clock as an argument.

The service runs in this process as in ``test_notifications_digest`` (its fixtures, imported:
a database of its own, the consumers on the broker, a real aiosmtpd server on an ephemeral port).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import Audience, ContentPublished, MemberErased, MemberUpdated, WaveUpdated
from advocacy_common.events.sharing import ShareCreated
from advocacy_notifications.features import expiring, mail, nudges
from tests.integration import test_notifications_digest as _digest
from tests.integration.test_notifications_digest import CONTENT, choose, content, next_nine, person
from tests.support.helpers import eventually
from tests.support.notifications import Notifications, equals
from tests.support.smtp import Inbox

# the digest module's fixtures (module-scoped: this module gets its own service and database)
smtp_port = _digest.smtp_port
inbox = _digest.inbox
notifications = _digest.notifications

SHARES = "/advocacy/sharing"
BASE = "http://notifications.test"


def shared(tenant: str, employee: str, content_id: str, at: datetime) -> Envelope[Any]:
    return new_event(
        SHARES,
        tenant,
        ShareCreated(
            employee_id=employee,
            share_id=uuid.uuid4().hex,
            content_id=content_id,
            network="linkedin",
            code=uuid.uuid4().hex[:8],
            created_at=at,
        ),
    )


def membership(tenant: str, employee: str, *, enrolled: bool = True, team: str | None = None) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        MemberUpdated(employee_id=employee, enrolled=enrolled, team=team, updated_at=datetime.now(UTC)),
    )


def wave(
    tenant: str, name: str, starts_at: datetime, *, teams: list[str] | None = None, employees: list[str] | None = None
) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        WaveUpdated(
            wave_id=name,
            name=name,
            starts_at=starts_at,
            teams=teams or [],
            employees=employees or [],
            updated_at=datetime.now(UTC),
        ),
    )


async def admin_put_defaults(n: Notifications, tenant: str, **body: Any) -> Any:
    async with n.client(n.mint(tenant, "admin-1", "admin")) as c:
        r = await c.put("/v1/notifications/defaults", json={"digest_frequency": "weekly", "digest_hour": 9, **body})
    return r


async def rows(n: Notifications, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with n.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(sa.text(sql), params)).all()]


async def compose(n: Notifications, fn: Any, now: datetime, limit: int = 1000) -> int:
    """One scheduler pass at ``now`` (every tenant in the database: tests count their own tenant's)."""
    async with n.runtime.sessionmaker() as session, session.begin():
        return int(await fn(session, now, base_url=BASE, limit=limit))


async def composed(n: Notifications, tenant: str) -> list[str]:
    """Whom the tenant's messages are to, in order."""
    return [r[0] for r in await rows(n, "select employee_id from messages where tenant_id = :t order by 1", t=tenant)]


async def test_people_silent_for_n_days_get_one_nudge_per_period_and_no_one_else(
    notifications: Notifications, inbox: Inbox
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC)
    r = await admin_put_defaults(n, tenant, nudge_after_days=30)
    assert r.status_code == 200 and r.json()["nudge_after_days"] == 30
    for who in ("ann", "bob", "cy", "dan", "eve", "fay"):
        await n.publish(person(who, tenant, "A", active=who != "cy"))
    await n.publish(membership(tenant, "dan", enrolled=False))  # opted out of the programme
    await n.publish(new_event(CONTENT, tenant, MemberErased(employee_id="eve", erased_at=start)))
    await choose_category(n, tenant, "fay", "nudge", "off")
    clock = start + timedelta(days=31)
    await n.publish(shared(tenant, "bob", "c-1", clock - timedelta(days=10)))  # bob shared 10 days ago
    await eventually(
        lambda: n.scalar("select 1 from members where tenant_id = :t and last_shared_at is not null", t=tenant),
        timeout=20,
        what="share copied",
    )
    await eventually(
        lambda: n.scalar("select 1 from erasures where tenant_id = :t", t=tenant), timeout=20, what="erasure"
    )
    await eventually(
        lambda: equals(n.scalar("select count(*) from members where tenant_id = :t", t=tenant), 5),
        timeout=20,
        what="members",
    )

    await compose(n, nudges.compose_due, clock)
    assert await composed(n, tenant) == ["ann"]  # never shared, known for 31 days
    await compose(n, nudges.compose_due, clock + timedelta(hours=1))
    await compose(n, nudges.compose_due, clock + timedelta(days=19))  # the same period; bob: 29 days
    assert await composed(n, tenant) == ["ann"]
    await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: clock)
    (msg,) = inbox.to(f"ann@{tenant}.example.com")
    assert msg["Subject"] == "Your first share is waiting"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # a period later: ann again (still silent), bob too (40 days since his share)
    later = clock + timedelta(days=30)
    await compose(n, nudges.compose_due, later)
    assert await composed(n, tenant) == ["ann", "ann", "bob"]
    # ann shares: her silence starts over, nothing for her a day later
    await n.publish(shared(tenant, "ann", "c-2", later + timedelta(hours=1)))
    await eventually(
        lambda: n.scalar(
            "select 1 from members where tenant_id = :t and employee_id = 'ann' and last_shared_at > :at",
            t=tenant,
            at=clock,
        ),
        timeout=20,
        what="ann's share",
    )
    await compose(n, nudges.compose_due, later + timedelta(days=1))
    assert await composed(n, tenant) == ["ann", "ann", "bob"]
    async with n.client(n.mint(tenant, "ann", "employee")) as c:
        exported = (await c.get("/v1/data-export/notifications/ann")).json()["sections"]["shared_items"]["items"]
    assert [item["content_id"] for item in exported] == ["c-2"]
    # the tenant turns the category off for people who chose nothing: nobody is nudged; back on, they are
    category = "/v1/notifications/defaults/categories/nudge/email"
    async with n.client(n.mint(tenant, "admin-1", "admin")) as c:
        assert (await c.put(category, json={"frequency": "off"})).status_code == 200
        await compose(n, nudges.compose_due, later + timedelta(days=100))
        assert await composed(n, tenant) == ["ann", "ann", "bob"]
        assert (await c.put(category, json={"frequency": "on"})).status_code == 200
    await compose(n, nudges.compose_due, later + timedelta(days=100))
    assert await composed(n, tenant) == ["ann", "ann", "ann", "bob", "bob"]
    # 0 turns nudges off
    assert (await admin_put_defaults(n, tenant, nudge_after_days=0)).status_code == 200
    await compose(n, nudges.compose_due, later + timedelta(days=300))
    assert await composed(n, tenant) == ["ann", "ann", "ann", "bob", "bob"]


async def choose_category(n: Notifications, tenant: str, employee: str, category: str, frequency: str) -> None:
    async with n.client(n.mint(tenant, employee, "employee")) as c:
        r = await c.put(f"/v1/notifications/preferences/{category}/email", json={"frequency": frequency})
        assert r.status_code == 200, r.text


async def test_a_pass_looks_at_a_bounded_number_of_people(notifications: Notifications) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    people = [f"p{i:02d}" for i in range(7)]
    for who in people:
        await n.publish(person(who, tenant, "A"))
    await eventually(
        lambda: equals(n.scalar("select count(*) from members where tenant_id = :t", t=tenant), 7),
        timeout=20,
        what="members",
    )
    clock = datetime.now(UTC) + timedelta(days=31)
    # other tenants' people share each pass's budget of 3; this tenant's 7 are reached in turn
    for _ in range(40):
        assert await compose(n, nudges.compose_due, clock, limit=3) <= 3
        if len(await composed(n, tenant)) == 7:
            break
    assert await composed(n, tenant) == people


async def test_people_who_have_an_expiring_item_on_their_board_and_did_not_share_it_hear_once(
    notifications: Notifications,
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    expires = now + timedelta(days=3)
    # ann, amir (shared it), alex (turned the notice off), ava, abe in team A; bob in B; cal in A
    # but in no wave (waves exist: the pilot wave is team A's, and cal is only in a later one)
    team_a = ["ann", "amir", "alex", "ava", "abe"]
    for who in team_a:
        await n.publish(person(who, tenant, "A"))
    await n.publish(person("bob", tenant, "B"))
    await n.publish(person("cal", tenant, "C"))
    await n.publish(wave(tenant, "pilot", now - timedelta(days=5), teams=["A"]))
    await n.publish(wave(tenant, "later", now + timedelta(days=30), employees=["cal"]))
    published = new_event(
        CONTENT,
        tenant,
        ContentPublished(
            content_id="c-exp",
            title="Going soon",
            url="https://example.com/soon",
            slug="c-exp",
            audience=Audience(teams=["A", "C"]),
            published_at=now - timedelta(days=1),
            expires_at=expires,
        ),
    )
    await n.publish(published)
    await n.publish(shared(tenant, "amir", "c-exp", now))
    await choose_category(n, tenant, "alex", "expiring", "off")
    await eventually(
        lambda: equals(n.scalar("select count(*) from wave_copies where tenant_id = :t", t=tenant), 2),
        timeout=20,
        what="waves",
    )
    await eventually(
        lambda: n.scalar("select 1 from shared_items where tenant_id = :t", t=tenant), timeout=20, what="share"
    )
    await eventually(
        lambda: equals(n.scalar("select count(*) from members where tenant_id = :t", t=tenant), 7),
        timeout=20,
        what="members",
    )
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t", t=tenant), timeout=20, what="item"
    )
    assert (await admin_put_defaults(n, tenant, expiring_notice_hours=48)).status_code == 200

    # more than 48 hours before: nothing yet
    await compose(n, expiring.compose_due, expires - timedelta(hours=49))
    assert await composed(n, tenant) == []
    # within 48 hours: passes of at most 2 people each page through the tenant
    clock = expires - timedelta(hours=47)
    for _ in range(6):
        await compose(n, expiring.compose_due, clock, limit=2)
    notified = await rows(
        n, "select employee_id, category, dedupe_key from messages where tenant_id = :t order by 1", t=tenant
    )
    assert notified == [
        ("abe", "expiring", "expiring:abe:c-exp"),
        ("ann", "expiring", "expiring:ann:c-exp"),
        ("ava", "expiring", "expiring:ava:c-exp"),
    ]
    # once per person and item: later passes add nothing
    await compose(n, expiring.compose_due, clock + timedelta(hours=1))
    assert await composed(n, tenant) == ["abe", "ann", "ava"]


async def test_the_digest_follows_the_waves_and_the_team_the_board_judges_by(notifications: Notifications) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    slot = next_nine(now)
    # in the pilot (team A, started); in a wave that starts after the slot; in no wave
    await n.publish(person("pia", tenant, "A"))
    await n.publish(person("lou", tenant, "L"))
    await n.publish(person("nia", tenant, "N"))
    # the directory names no team for dee (blank): the board judges her by membership's team, A
    await n.publish(membership(tenant, "dee", team="A"))
    await n.publish(person("dee", tenant, ""))
    await n.publish(wave(tenant, "pilot", now - timedelta(days=1), teams=["A"]))
    await n.publish(wave(tenant, "later", slot + timedelta(days=1), teams=["L"]))
    for who in ("pia", "lou", "nia", "dee"):
        await choose(n, tenant, who, "daily")
    await n.publish(content(tenant, "c-w", [], now))  # for everyone the programme reached
    await n.publish(content(tenant, "c-a", ["A"], now))
    await eventually(
        lambda: equals(n.scalar("select count(*) from wave_copies where tenant_id = :t", t=tenant), 2),
        timeout=20,
        what="waves",
    )
    await eventually(
        lambda: equals(n.scalar("select count(*) from content_copies where tenant_id = :t", t=tenant), 2),
        timeout=20,
        what="content",
    )
    await eventually(
        lambda: n.scalar(
            "select 1 from members where tenant_id = :t and employee_id = 'dee' and directory_at is not null", t=tenant
        ),
        timeout=20,
        what="dee's directory record",
    )
    await compose_digests(n, slot)
    got = await rows(n, "select employee_id, body_text from messages where tenant_id = :t order by 1", t=tenant)
    assert [who for who, _ in got] == ["dee", "pia"]
    for _, body in got:
        assert "c-w" in body and "c-a" in body


async def compose_digests(n: Notifications, now: datetime) -> int:
    from advocacy_notifications.features import digests

    return await compose(n, digests.compose_due, now)


async def test_quiet_hours_hold_mail_until_they_end_and_bad_hours_are_a_422(
    notifications: Notifications, inbox: Inbox
) -> None:
    n = notifications
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    async with n.client(n.mint(tenant, "quinn", "employee")) as c:
        for bad in (
            {"start_hour": 22, "end_hour": 24},
            {"start_hour": -1, "end_hour": 7},
            {"start_hour": 5, "end_hour": 5},
            {"start_hour": 22},
            {"start_hour": 22, "end_hour": None},
            {"start_hour": "late", "end_hour": 7},
            {"start_hour": 22, "end_hour": 7, "extra": 1},
        ):
            r = await c.put("/v1/notifications/quiet-hours", json=bad)
            assert r.status_code == 422, (bad, r.status_code, r.text)
        assert (await c.get("/v1/notifications/quiet-hours")).json() == {
            "start_hour": None,
            "end_hour": None,
            "chosen": False,
        }
    # the tenant's default: 22 to 7 (time zone UTC); quinn keeps the default, ray has none at all
    r = await admin_put_defaults(n, tenant, quiet_hours={"start_hour": 22, "end_hour": 7})
    assert r.status_code == 200 and r.json()["quiet_hours"] == {"start_hour": 22, "end_hour": 7}
    async with n.client(n.mint(tenant, "ray", "employee")) as c:
        r = await c.put("/v1/notifications/quiet-hours", json={"start_hour": None, "end_hour": None})
        assert r.status_code == 200 and r.json()["chosen"] is True
        # their data export lists what they chose
        exported = (await c.get("/v1/data-export/notifications/ray")).json()["sections"]["quiet_hours"]["items"]
        assert [(q["start_hour"], q["end_hour"]) for q in exported] == [(None, None)]
    async with n.client(n.mint(tenant, "quinn", "employee")) as c:
        assert (await c.get("/v1/notifications/quiet-hours")).json() == {
            "start_hour": 22,
            "end_hour": 7,
            "chosen": False,
        }
    for who in ("quinn", "ray"):
        await n.publish(person(who, tenant, "A"))
        await choose(n, tenant, who, "daily")
    await n.publish(content(tenant, "c-q", ["A"], datetime.now(UTC)))
    await eventually(
        lambda: equals(n.scalar("select count(*) from members where tenant_id = :t", t=tenant), 2),
        timeout=20,
        what="members",
    )
    await eventually(
        lambda: n.scalar("select 1 from content_copies where tenant_id = :t", t=tenant), timeout=20, what="content"
    )
    # the digest hour is 23 (inside the quiet hours): composed at 23, quinn's waits for 07:00
    assert (
        await admin_put_defaults(n, tenant, digest_hour=23, quiet_hours={"start_hour": 22, "end_hour": 7})
    ).is_success
    now = datetime.now(UTC)
    eleven = now.replace(hour=23, minute=0, second=0, microsecond=0)
    if eleven <= now:
        eleven += timedelta(days=1)
    await compose_digests(n, eleven)
    due = await rows(n, "select employee_id, next_attempt_at from messages where tenant_id = :t order by 1", t=tenant)
    seven = (eleven + timedelta(days=1)).replace(hour=7)
    assert due == [("quinn", seven), ("ray", eleven)]
    await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: eleven)
    assert len(inbox.to(f"ray@{tenant}.example.com")) == 1
    assert inbox.to(f"quinn@{tenant}.example.com") == []
    await mail.deliver_pending(n.runtime.sessionmaker, n.settings, clock=lambda: seven)
    assert len(inbox.to(f"quinn@{tenant}.example.com")) == 1
