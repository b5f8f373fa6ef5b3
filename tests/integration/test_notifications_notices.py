"""Per-event notices against a real database: the events applied through the consumers' handlers
(``inbound.on_content``, ``inbound.on_gamification``), as the worker applies a batch, and the
challenge pass (``notices.compose_due``) driven by an injected clock.

Each event queues exactly one message to the right person; the same event again (a redelivery, a
re-publication) queues none; nobody deactivated, opted out, erased, bounced, or with the category
turned off (by themselves or by the tenant's default) is told; a challenge's start reaches its
audience once it begins, its end everyone once, a winner "you won" instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from advocacy_common.db import make_engine, make_sessionmaker
from advocacy_common.errors import Unprocessable
from advocacy_common.events import Envelope, new_event
from advocacy_common.events.content import (
    CoachingReplied,
    ContentPublished,
    MemberErased,
    MemberProvisioned,
    MemberUpdated,
    SuggestionApproved,
    SuggestionRejected,
    WaveUpdated,
)
from advocacy_common.events.gamification import (
    BadgeEarned,
    ChallengeCreated,
    ChallengeFinalised,
    ChallengeWon,
    RewardFulfilled,
)
from advocacy_common.migrations import upgrade
from advocacy_notifications.domain import Category, Channel, Frequency, Language
from advocacy_notifications.features import expiring, inbound, mail, notices, preferences, wording

CONTENT, GAMIFICATION = "/advocacy/content", "/advocacy/gamification"
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module")
async def sm(pg: Any) -> AsyncIterator[Sessions]:
    url = pg.create_database(f"notices_{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(upgrade, "advocacy_notifications", url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def address(tenant: str, who: str) -> str:
    return f"{who}@{tenant}.example.com"


def provisioned(tenant: str, who: str, *, team: str = "red", active: bool = True) -> Envelope[Any]:
    return new_event(
        CONTENT,
        tenant,
        MemberProvisioned(
            employee_id=who,
            active=active,
            user_name=address(tenant, who),
            display_name=who.title(),
            team=team,
            updated_at=datetime.now(UTC),
        ),
    )


def enrolment(tenant: str, who: str, enrolled: bool) -> Envelope[Any]:
    return new_event(CONTENT, tenant, MemberUpdated(employee_id=who, enrolled=enrolled, updated_at=datetime.now(UTC)))


async def apply(sm: Sessions, *events: Envelope[Any]) -> None:
    """One consumed batch per topic, as the worker applies it (one transaction each)."""
    for env in events:
        handler = inbound.on_gamification if env.source == GAMIFICATION else inbound.on_content
        async with sm() as s, s.begin():
            await handler(s, [env])


async def messages(sm: Sessions, tenant: str) -> list[Any]:
    async with sm() as s:
        rows = await s.execute(
            sa.text(
                "SELECT employee_id, recipient, category, subject, body_text, body_html, headers, state"
                " FROM messages WHERE tenant_id = :t ORDER BY employee_id, category, subject"
            ),
            {"t": tenant},
        )
        return list(rows.all())


async def people(sm: Sessions, tenant: str, *names: str, team: str = "red") -> None:
    await apply(sm, *(provisioned(tenant, n, team=team) for n in names))


async def test_each_event_tells_the_right_person_once(sm: Sessions) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    await people(sm, t, "eve", "ann", "bob", "dora")
    now = datetime.now(UTC)
    async with sm() as s, s.begin():  # dora reads German (PUT /v1/notifications/language)
        await wording.set_member_language(s, t, "dora", Language.de, now)
    events: list[Envelope[Any]] = [
        new_event(
            CONTENT,
            t,
            SuggestionApproved(
                content_id="c1", proposer_id="eve", approved_by="boss", approved_at=now, title="Idea <1>"
            ),
        ),
        new_event(
            CONTENT,
            t,
            SuggestionRejected(
                content_id="c2",
                proposer_id="eve",
                title="Idea 2",
                rejected_by="boss",
                reason="off-brand",
                rejected_at=now,
            ),
        ),
        new_event(
            CONTENT,
            t,
            CoachingReplied(request_id="r1", reply_id="x1", requester_id="ann", coach_id="cora", replied_at=now),
        ),
        new_event(GAMIFICATION, t, BadgeEarned(employee_id="ann", badge="ten_shares", earned_at=now)),
        new_event(GAMIFICATION, t, BadgeEarned(employee_id="dora", badge="first_share", earned_at=now)),
        new_event(
            GAMIFICATION,
            t,
            RewardFulfilled(
                employee_id="bob", redemption_id="d1", reward_id="w1", reward_name="A mug", fulfilled_at=now
            ),
        ),
    ]
    await apply(sm, *events)
    await apply(sm, *events)  # redelivered, or re-published after a broker lost its log: same ids
    got = await messages(sm, t)
    assert [(m.employee_id, m.category, m.subject) for m in got] == [
        ("ann", "badges", "You earned a badge: Ten shares"),
        ("ann", "coaching", "A coach replied to your question"),
        ("bob", "rewards", "Your reward is on its way: A mug"),
        ("dora", "badges", "Sie haben ein Abzeichen erhalten: Erster geteilter Beitrag"),
        ("eve", "suggestions", "Your suggestion was approved: Idea <1>"),
        ("eve", "suggestions", "Your suggestion was not approved: Idea 2"),
    ]
    assert all(m.recipient == address(t, m.employee_id) and m.state == "pending" for m in got)
    rejected = got[5]
    assert "off-brand" in rejected.body_text and "Hello Eve," in rejected.body_text
    assert "Idea &lt;1&gt;" in got[4].body_html  # an admin's title, escaped in HTML
    german = got[3]
    assert german.body_text.startswith("Hallo Dora,") and "Abbestellen: " in german.body_text
    assert '<html lang="de">' in german.body_html
    # every notice can be unsubscribed from in one click (RFC 8058), its own category only
    assert all(m.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in got)


async def test_nobody_out_is_told(sm: Sessions) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    await people(sm, t, "gone", "left", "quiet", "muted", "bounced", "erased", "late")
    await apply(sm, provisioned(t, "gone", active=False), enrolment(t, "left", False))
    async with sm() as s, s.begin():
        await preferences.choose(s, t, "quiet", Category.badges, Channel.email, Frequency.off)
        await mail.suppress(s, t, "bounced", address(t, "bounced"), "550 no such mailbox", datetime.now(UTC))
    await apply(sm, new_event(CONTENT, t, MemberErased(employee_id="erased", erased_at=datetime.now(UTC))))
    # the tenant turned rewards off for people who chose nothing; "muted" did not choose
    async with sm() as s, s.begin():
        await preferences.set_category_default(s, t, Category.rewards, Channel.email, Frequency.off)
    now = datetime.now(UTC)
    for who in ("gone", "left", "quiet", "bounced", "erased"):
        await apply(sm, new_event(GAMIFICATION, t, BadgeEarned(employee_id=who, badge="first_share", earned_at=now)))
    reward = RewardFulfilled(employee_id="muted", redemption_id="d", reward_id="w", reward_name="Mug", fulfilled_at=now)
    await apply(sm, new_event(GAMIFICATION, t, reward))
    # an event replayed from a topic's history is not news
    old = new_event(
        GAMIFICATION, t, BadgeEarned(employee_id="late", badge="x", earned_at=now), at=now - timedelta(days=3)
    )
    await apply(sm, old)
    assert await messages(sm, t) == []
    # the same person with the category on is told: the rules above, not the events, said no
    await apply(sm, new_event(GAMIFICATION, t, BadgeEarned(employee_id="muted", badge="x", earned_at=now)))
    assert [(m.employee_id, m.category) for m in await messages(sm, t)] == [("muted", "badges")]


async def test_frequencies_a_category_takes_and_the_digest_default_is_set_once(sm: Sessions) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    async with sm() as s, s.begin():
        with pytest.raises(Unprocessable):
            await preferences.choose(s, t, "ann", Category.badges, Channel.email, Frequency.daily)
        with pytest.raises(Unprocessable):
            await preferences.choose(s, t, "ann", Category.digest, Channel.email, Frequency.on)
        with pytest.raises(Unprocessable):
            await preferences.set_category_default(s, t, Category.digest, Channel.email, Frequency.off)
        await preferences.set_category_default(s, t, Category.coaching, Channel.email, Frequency.off)
        mine = {r["category"]: r for r in await preferences.mine(s, t, "ann")}
    assert mine[Category.coaching]["frequency"] is Frequency.off and not mine[Category.coaching]["chosen"]
    assert mine[Category.badges]["frequency"] is Frequency.on
    assert mine[Category.digest]["frequency"] is Frequency.weekly  # the tenant's digest frequency


async def challenge_pass(sm: Sessions, now: datetime, limit: int = 2) -> int:
    """The scheduler at ``now`` until it has nothing left (a small page: several passes)."""
    total = 0
    for _ in range(50):
        async with sm() as s, s.begin():
            n = await notices.compose_due(s, now, base_url="http://notifications.test", limit=limit)
        total += n
        if n == 0:
            return total
    raise AssertionError("the challenge pass never finished")


async def test_a_challenge_starts_ends_and_is_won(sm: Sessions) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    await people(sm, t, "ann", "bob", "dan", "eli")
    await people(sm, t, "cat", "cid", team="blue")
    async with sm() as s, s.begin():
        await preferences.choose(s, t, "dan", Category.challenges, Channel.email, Frequency.off)
    await apply(sm, enrolment(t, "eli", False))
    now = datetime.now(UTC)
    starts, ends = now + timedelta(hours=1), now + timedelta(days=7)
    cid = str(uuid.uuid4())
    created = ChallengeCreated(
        challenge_id=cid, name="Spring", starts_at=starts, ends_at=ends, goal_kind="top_n", goal_value=1, created_at=now
    )
    await apply(sm, new_event(GAMIFICATION, t, created))
    assert await challenge_pass(sm, now) == 0  # not started yet
    assert await challenge_pass(sm, starts + timedelta(minutes=1)) == 4  # ann, bob, cat, cid (page of 2)
    assert await challenge_pass(sm, starts + timedelta(minutes=2)) == 0
    await apply(sm, new_event(GAMIFICATION, t, created))  # redelivered: nothing new, not announced again
    assert await challenge_pass(sm, starts + timedelta(minutes=3)) == 0

    done = ends + timedelta(minutes=1)
    won = [
        ChallengeWon(challenge_id=cid, name="Spring", employee_id="ann", rank=1, points=15, finalised_at=done),
        ChallengeWon(challenge_id=cid, name="Spring", team="blue", rank=1, points=30, finalised_at=done),
    ]
    end = ChallengeFinalised(
        challenge_id=cid, name="Spring", ends_at=ends, goal_kind="top_n", winners=2, finalised_at=done
    )
    batch = [new_event(GAMIFICATION, t, d, at=done) for d in [*won, end]]
    await apply(sm, *batch)
    await apply(sm, *batch)
    assert await challenge_pass(sm, done) == 1  # bob: the winners were told already
    assert await challenge_pass(sm, done + timedelta(minutes=1)) == 0
    got = [(m.employee_id, m.subject) for m in await messages(sm, t)]
    assert sorted(got) == [
        ("ann", "A challenge has started: Spring"),
        ("ann", "You won: Spring"),
        ("bob", "A challenge has started: Spring"),
        ("bob", "The challenge has ended: Spring"),
        ("cat", "A challenge has started: Spring"),
        ("cat", "Your team won: Spring"),
        ("cid", "A challenge has started: Spring"),
        ("cid", "Your team won: Spring"),
    ]


async def test_a_challenge_noticed_after_its_end_is_not_announced(sm: Sessions) -> None:
    t = f"t-{uuid.uuid4().hex[:8]}"
    await people(sm, t, "ann")
    now = datetime.now(UTC)
    past = ChallengeCreated(
        challenge_id=str(uuid.uuid4()),
        name="Old",
        starts_at=now - timedelta(days=9),
        ends_at=now - timedelta(days=8),
        goal_kind="threshold",
        goal_value=5,
        created_at=now - timedelta(days=9),
    )
    await apply(sm, new_event(GAMIFICATION, t, past, at=now - timedelta(days=9)))
    # finalised long ago: a consumer starting on the topic's history tells nobody
    old_end = ChallengeFinalised(
        challenge_id=past.challenge_id,
        name="Old",
        ends_at=past.ends_at,
        goal_kind="threshold",
        winners=0,
        finalised_at=now - timedelta(days=8),
    )
    await apply(sm, new_event(GAMIFICATION, t, old_end, at=now - timedelta(days=8)))
    assert await challenge_pass(sm, now) == 0
    assert await messages(sm, t) == []


async def test_a_late_wave_opener_hears_once_the_expiring_item_is_on_their_board(sm: Sessions) -> None:
    # ann's wave is open; bob's opens 6 hours into the item's last day; cy is in no wave. The sweep
    # of the item is finished before bob's wave opens: it is made again once it has, for him alone.
    t = f"t-{uuid.uuid4().hex[:8]}"
    await people(sm, t, "ann", "bob", "cy")
    now = datetime.now(UTC)

    def wave(name: str, starts_at: datetime, who: str) -> Envelope[Any]:
        return new_event(
            CONTENT, t, WaveUpdated(wave_id=name, name=name, starts_at=starts_at, employees=[who], updated_at=now)
        )

    item = ContentPublished(
        content_id="c-late",
        title="Going soon",
        url="https://example.com/soon",
        slug="c-late",
        published_at=now - timedelta(days=1),
        expires_at=now + timedelta(hours=20),  # within the default 24 hours' notice
    )
    await apply(sm, wave("pilot", now - timedelta(days=2), "ann"), wave("late", now + timedelta(hours=6), "bob"))
    await apply(sm, new_event(CONTENT, t, item))

    async def expiry_pass(at: datetime) -> list[str]:
        async with sm() as s, s.begin():
            await expiring.compose_due(s, at, base_url="http://n.test", limit=1000)
        return [m.employee_id for m in await messages(sm, t)]

    assert await expiry_pass(now) == ["ann"]
    assert await expiry_pass(now + timedelta(hours=1)) == ["ann"]
    assert await expiry_pass(now + timedelta(hours=7)) == ["ann", "bob"]
    assert await expiry_pass(now + timedelta(hours=8)) == ["ann", "bob"]  # once each
