"""Server-side sessions: the browser holds only a random id in an HttpOnly cookie; the token, the
person and the CSRF secret stay here.

Slice 1 keeps them in this process's memory, bounded: at most ``max_sessions`` (the least recently
used is dropped first, so a flood of logins costs memory only up to the bound, ~2 KB a session with
its token), each ending after ``idle_seconds`` without use or when its token expires, whichever comes
first. The clock is injected so the rules are tested without waiting.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

# 32 random bytes: an id nobody guesses (256 bits), URL-safe in a cookie.
ID_BYTES = 32
# At most this many one-shot messages wait for the next page (a flood of failed shares adds none past it).
MAX_FLASHES = 5


@dataclass(slots=True)
class Person:
    """Who is logged in, as the token says."""

    tenant: str
    sub: str
    roles: tuple[str, ...]
    team: str | None = None
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def label(self) -> str:
        return self.name or self.sub


@dataclass(slots=True)
class Session:
    id: str
    token: str
    person: Person
    expires_at: float  # the token's expiry (epoch seconds)
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(ID_BYTES))
    flashes: list[str] = field(default_factory=list)

    def csrf_matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.csrf.encode())

    def flash(self, message: str) -> None:
        if len(self.flashes) < MAX_FLASHES:
            self.flashes.append(message)

    def take_flashes(self) -> list[str]:
        out, self.flashes = self.flashes, []
        return out


class SessionStore:
    """Sessions by id, bounded in number, idle-expiring. Not thread-safe: one event loop uses it."""

    def __init__(self, *, max_sessions: int, idle_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, token: str, person: Person, expires_at: float) -> Session:
        """A new session with a new id (never one the browser sent: no fixation)."""
        now = self.clock()
        session = Session(
            id=secrets.token_urlsafe(ID_BYTES), token=token, person=person, expires_at=expires_at, last_seen=now
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (touched), or None; an expired one is dropped."""
        if not session_id or len(session_id) > 128:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now >= session.expires_at or now - session.last_seen >= self.idle_seconds:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)
