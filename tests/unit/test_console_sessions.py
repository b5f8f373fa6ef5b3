"""The console's server-side sessions: bounded in number, ended by idleness or the token's expiry,
and a new id for every login (docs/adr/0014-web-console.md)."""

from __future__ import annotations

from advocacy_console.sessions import MAX_FLASHES, Person, SessionStore

ALICE = Person(tenant="acme", sub="alice", roles=("employee",))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_store_keeps_at_most_its_bound_dropping_the_least_recently_used() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=3, idle_seconds=600, clock=clock)
    first, second, third = (store.create("t", ALICE, clock.now + 3600) for _ in range(3))
    assert store.get(first.id) is first  # touched: now the most recent
    fourth = store.create("t", ALICE, clock.now + 3600)
    assert len(store) == 3
    assert store.get(second.id) is None  # the least recently used went
    assert {s.id for s in (first, third, fourth)} == {
        s.id for s in (store.get(first.id), store.get(third.id), store.get(fourth.id)) if s
    }


def test_a_session_ends_when_idle_or_when_its_token_expires() -> None:
    clock = Clock()
    store = SessionStore(max_sessions=10, idle_seconds=600, clock=clock)
    idle = store.create("t", ALICE, clock.now + 3600)
    short = store.create("t", ALICE, clock.now + 300)
    clock.now += 299
    assert store.get(short.id) is short
    clock.now += 1
    assert store.get(short.id) is None  # its token expired
    assert len(store) == 1
    clock.now += 299  # 599 s after idle's last use
    assert store.get(idle.id) is idle
    clock.now += 600
    assert store.get(idle.id) is None and len(store) == 0


def test_every_login_gets_a_fresh_unguessable_id_and_csrf_secret() -> None:
    store = SessionStore(max_sessions=100, idle_seconds=600)
    sessions = [store.create("t", ALICE, 2e9) for _ in range(50)]
    assert len({s.id for s in sessions}) == 50 and len({s.csrf for s in sessions}) == 50
    assert all(len(s.id) >= 43 for s in sessions)  # 32 random bytes, base64url
    assert store.get(None) is None and store.get("") is None and store.get("x" * 129) is None


def test_csrf_matches_only_the_sessions_own_token() -> None:
    session = SessionStore(max_sessions=1, idle_seconds=60).create("t", ALICE, 2e9)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf[:-1])


def test_flashes_are_bounded_and_shown_once() -> None:
    session = SessionStore(max_sessions=1, idle_seconds=60).create("t", ALICE, 2e9)
    for i in range(MAX_FLASHES + 10):
        session.flash(f"m{i}")
    assert session.take_flashes() == [f"m{i}" for i in range(MAX_FLASHES)]
    assert session.take_flashes() == []
