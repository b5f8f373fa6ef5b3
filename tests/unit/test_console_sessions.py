"""The console's server-side session rules: bounded in number and per person, ended by idleness, by
age or by the token's expiry (unless a refresh renews it), and a new id for every login
(docs/adr/0014-web-console.md). The memory backend; the table's are in tests/security."""

from __future__ import annotations

import asyncio

from advocacy_console.sessions import MAX_FLASHES, MemoryBackend, Person, Renewed, Sessions

ALICE = Person(tenant="acme", sub="alice", roles=("employee",))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock | None = None, *, max_sessions: int = 100, per_person: int = 100, **kw: object) -> Sessions:
    return Sessions(
        MemoryBackend(max_sessions),
        idle_seconds=600,
        max_age_seconds=kw.pop("max_age_seconds", 12 * 3600),  # type: ignore[arg-type]
        max_per_person=per_person,
        clock=clock or Clock(),
        **kw,  # type: ignore[arg-type]
    )


async def test_the_store_keeps_at_most_its_bound_dropping_the_least_recently_used() -> None:
    clock = Clock()
    s = store(clock, max_sessions=3)
    first, second, third = [await s.create("t", ALICE, clock.now + 3600) for _ in range(3)]
    assert await s.get(first.id) is not None  # touched: now the most recent
    fourth = await s.create("t", ALICE, clock.now + 3600)
    assert len(s.backend) == 3  # type: ignore[arg-type]
    assert await s.get(second.id) is None  # the least recently used went
    assert all([await s.get(x.id) for x in (first, third, fourth)])


async def test_a_session_ends_when_idle_when_too_old_or_when_its_token_expires() -> None:
    clock = Clock()
    s = store(clock, max_age_seconds=3000)
    idle = await s.create("t", ALICE, clock.now + 3600)
    short = await s.create("t", ALICE, clock.now + 300)
    clock.now += 299
    assert await s.get(short.id) is not None
    clock.now += 1
    assert await s.get(short.id) is None  # its token expired
    clock.now += 299  # 599 s after idle's last use
    assert await s.get(idle.id) is not None
    clock.now += 600
    assert await s.get(idle.id) is None  # idle
    old = await s.create("t", ALICE, clock.now + 86400)
    for _ in range(5):  # used every 599 s: never idle, but 3000 s after the login it ends
        clock.now += 599
        assert await s.get(old.id) is not None
    clock.now += 5
    assert await s.get(old.id) is None


async def test_a_token_due_to_expire_is_refreshed_and_a_refused_refresh_ends_the_session() -> None:
    clock = Clock()
    calls: list[str] = []

    async def refresher(refresh_token: str, id_token: str | None) -> Renewed:
        calls.append(refresh_token)
        if refresh_token == "revoked":
            raise RuntimeError("invalid_grant")
        return Renewed("t2", clock.now + 300, "r2", None)

    s = store(clock, refresher=refresher)
    session = await s.create("t1", ALICE, clock.now + 120, refresh_token="r1", id_token="id")
    clock.now += 30
    assert (await s.get(session.id)).token == "t1"  # type: ignore[union-attr]
    assert calls == []
    clock.now += 31  # 59 s left: renewed before use
    renewed = await s.get(session.id)
    assert renewed is not None and (renewed.token, renewed.refresh_token, renewed.id_token) == ("t2", "r2", "id")
    clock.now += 400  # expired, but a refresh token may still renew it
    assert (await s.get(session.id)).token == "t2"  # type: ignore[union-attr]
    revoked = await s.create("t", ALICE, clock.now + 10, refresh_token="revoked")
    assert await s.get(revoked.id) is None


async def test_a_person_has_at_most_the_bound_oldest_dropped() -> None:
    s = store(per_person=2)
    bob = Person(tenant="acme", sub="bob", roles=("employee",))
    mine = [await s.create("t", ALICE, 2e9) for _ in range(3)]
    other = await s.create("t", bob, 2e9)
    assert [await s.get(x.id) is not None for x in mine] == [False, True, True]
    assert await s.get(other.id) is not None


async def test_every_login_gets_a_fresh_unguessable_id_and_csrf_secret() -> None:
    s = store()
    sessions = [await s.create("t", ALICE, 2e9) for _ in range(50)]
    assert len({x.id for x in sessions}) == 50 and len({x.csrf for x in sessions}) == 50
    assert all(len(x.id) >= 43 for x in sessions)  # 32 random bytes, base64url
    assert await s.get(None) is None and await s.get("") is None and await s.get("x" * 129) is None


async def test_csrf_matches_only_the_sessions_own_token() -> None:
    session = await store().create("t", ALICE, 2e9)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf[:-1])


async def test_flashes_are_bounded_shown_once_and_kept_across_requests() -> None:
    s = store()
    session = await s.create("t", ALICE, 2e9)
    for i in range(MAX_FLASHES + 10):
        session.flash(f"m{i}")
    assert session.dirty
    await s.save(session)
    again = await s.get(session.id)
    assert again is not None and again.take_flashes() == [f"m{i}" for i in range(MAX_FLASHES)]
    await s.save(again)
    third = await s.get(session.id)
    assert third is not None and third.take_flashes() == []


async def test_parallel_requests_spend_a_refresh_token_once() -> None:
    clock = Clock()
    calls: list[str] = []

    async def refresher(refresh_token: str, id_token: str | None) -> Renewed:
        calls.append(refresh_token)
        await asyncio.sleep(0.01)  # the provider answers while the page's other requests arrive
        return Renewed(f"t{len(calls) + 1}", clock.now + 300, f"r{len(calls) + 1}", None)

    s = store(clock, refresher=refresher)
    session = await s.create("t1", ALICE, clock.now + 30, refresh_token="r1")
    got = await asyncio.gather(*(s.get(session.id) for _ in range(5)))
    assert calls == ["r1"]  # a rotating refresh token used twice would be revoked by the provider
    assert {g.token for g in got if g is not None} == {"t2"} and all(got)
