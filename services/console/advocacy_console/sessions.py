"""Server-side sessions: the browser holds only a random id in an HttpOnly cookie; the tokens, the
person and the CSRF secret stay on the server (ADR 0014).

:class:`Sessions` holds the rules, the same whatever keeps the rows:

* a login always makes a **new id** (256 random bits), never one the browser sent (fixation);
* a session ends after ``idle_seconds`` without a request, ``max_age_seconds`` after the login
  whatever happens (absolute), or when its token expires and there is no refresh token to renew it;
* a token that expires within :data:`REFRESH_MARGIN_SECONDS` is renewed with the refresh token
  (OIDC logins), by the ``refresher`` given; a refused refresh ends the session;
* at most ``max_per_person`` sessions per person: a new login drops that person's oldest.

Where the rows live is a :class:`Backend`: :class:`MemoryBackend` (one process, bounded, least
recently used dropped first: dev without a database and unit tests) or the console's own table
(:mod:`advocacy_console.sessiondb`: survives a restart, shared by replicas). The clock is injected
so the rules are tested without waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("advocacy.console.sessions")

# 32 random bytes: an id nobody guesses (256 bits), URL-safe in a cookie.
ID_BYTES = 32
# The longest id a cookie may bring (43 characters are issued); longer is not looked up.
MAX_ID_LENGTH = 128
# At most this many one-shot messages wait for the next page (a flood of failed shares adds none past it).
MAX_FLASHES = 5
# A token expiring within this is renewed before the request uses it (a page calls up to 4 APIs).
REFRESH_MARGIN_SECONDS = 60.0
# ``last_seen`` is written at most this often per session (a table row is not rewritten per request);
# the idle limit is therefore exact to within this.
TOUCH_SECONDS = 60.0


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
    created_at: float = 0.0
    refresh_token: str | None = None
    id_token: str | None = None  # kept for the provider's logout (id_token_hint)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(ID_BYTES))
    flashes: list[str] = field(default_factory=list)
    dirty: bool = False  # changed since it was loaded: saved at the end of the request

    def csrf_matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self.csrf.encode())

    def flash(self, message: str) -> None:
        if len(self.flashes) < MAX_FLASHES:
            self.flashes.append(message)
            self.dirty = True

    def take_flashes(self) -> list[str]:
        out, self.flashes = self.flashes, []
        self.dirty = self.dirty or bool(out)
        return out

    # -- how a backend stores it -----------------------------------------------------------------
    def data(self) -> dict[str, Any]:
        """Everything but the id, as JSON-able values."""
        p = self.person
        return {
            "token": self.token,
            "person": {"tenant": p.tenant, "sub": p.sub, "roles": list(p.roles), "team": p.team, "name": p.name},
            "expires_at": self.expires_at,
            "last_seen": self.last_seen,
            "created_at": self.created_at,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "csrf": self.csrf,
            "flashes": self.flashes,
        }

    @classmethod
    def from_data(cls, session_id: str, data: dict[str, Any]) -> Session:
        p = data["person"]
        person = Person(p["tenant"], p["sub"], tuple(p["roles"]), p.get("team"), p.get("name"))
        return cls(
            id=session_id,
            token=data["token"],
            person=person,
            expires_at=float(data["expires_at"]),
            last_seen=float(data["last_seen"]),
            created_at=float(data.get("created_at", 0.0)),
            refresh_token=data.get("refresh_token"),
            id_token=data.get("id_token"),
            csrf=data["csrf"],
            flashes=list(data.get("flashes", [])),
        )


def digest(session_id: str) -> str:
    """What a table keys a session by: a copy of the table does not give away live cookies."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Renewed:
    """New tokens from a refresh (what :class:`Sessions` needs of an OIDC refresher's answer)."""

    token: str
    expires_at: float
    refresh_token: str | None
    id_token: str | None


# refresh token, id token -> new tokens; raises on refusal (the session then ends)
Refresher = Callable[[str, str | None], Awaitable[Renewed]]


class Backend(Protocol):
    async def insert(self, session: Session) -> None: ...
    async def load(self, session_id: str) -> Session | None: ...
    async def update(self, session: Session) -> None: ...
    async def remove(self, session_id: str) -> None: ...
    async def trim_person(self, tenant: str, sub: str, keep: int) -> None:
        """Drop the person's oldest sessions so at most ``keep`` remain."""
        ...

    async def close(self) -> None: ...


class Sessions:
    """The session rules over a backend."""

    def __init__(
        self,
        backend: Backend,
        *,
        idle_seconds: float,
        max_age_seconds: float,
        max_per_person: int,
        clock: Callable[[], float] = time.time,
        refresher: Refresher | None = None,
    ) -> None:
        self.backend = backend
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self.max_per_person = max_per_person
        self.clock = clock
        self.refresher = refresher
        self._refreshing: dict[str, asyncio.Lock] = {}

    async def create(
        self,
        token: str,
        person: Person,
        expires_at: float,
        *,
        refresh_token: str | None = None,
        id_token: str | None = None,
    ) -> Session:
        """A new session with a new id (never one the browser sent: no fixation)."""
        now = self.clock()
        session = Session(
            id=secrets.token_urlsafe(ID_BYTES),
            token=token,
            person=person,
            expires_at=expires_at,
            last_seen=now,
            created_at=now,
            refresh_token=refresh_token,
            id_token=id_token,
        )
        await self.backend.insert(session)
        await self.backend.trim_person(person.tenant, person.sub, self.max_per_person)
        return session

    def ended(self, session: Session, now: float) -> bool:
        if now - session.last_seen >= self.idle_seconds or now - session.created_at >= self.max_age_seconds:
            return True
        # An expired token ends the session unless a refresh token may renew it.
        return now >= session.expires_at and not (session.refresh_token and self.refresher)

    async def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (touched, its token renewed when due), or None; an ended
        one is deleted."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        session = await self.backend.load(session_id)
        if session is None:
            return None
        now = self.clock()
        if self.ended(session, now):
            await self.backend.remove(session_id)
            return None
        if session.refresh_token and self.refresher and session.expires_at - now < REFRESH_MARGIN_SECONDS:
            refreshed = await self._refresh(session)
            if refreshed is None:
                return None
            session = refreshed
        if now - session.last_seen >= TOUCH_SECONDS:
            session.last_seen = now
            session.dirty = True
        if session.dirty:
            await self.save(session)
        return session

    async def _refresh(self, session: Session) -> Session | None:
        """Renew the session's tokens, once for all the requests of this process that found them due
        (a page's parallel requests must not spend a rotating refresh token twice: the provider would
        see a reuse and revoke them all)."""
        assert self.refresher is not None
        lock = self._refreshing.setdefault(session.id, asyncio.Lock())
        try:
            async with lock:
                current = await self.backend.load(session.id)  # another request may have renewed it
                if current is None:
                    return None
                if current.expires_at - self.clock() >= REFRESH_MARGIN_SECONDS:
                    return current
                try:
                    renewed = await self.refresher(current.refresh_token or "", current.id_token)
                except Exception as e:  # the provider refused or is down: the person logs in again
                    log.info("session refresh refused, the session ends", extra={"error": type(e).__name__})
                    await self.backend.remove(session.id)
                    return None
                current.token, current.expires_at = renewed.token, renewed.expires_at
                current.refresh_token = renewed.refresh_token or current.refresh_token
                current.id_token = renewed.id_token or current.id_token
                current.last_seen = session.last_seen
                await self.save(current)
                return current
        finally:
            if not lock.locked() and self._refreshing.get(session.id) is lock:
                del self._refreshing[session.id]

    async def save(self, session: Session) -> None:
        """Write a changed session back (its flashes, its renewed tokens, its last use)."""
        await self.backend.update(session)
        session.dirty = False

    async def delete(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= MAX_ID_LENGTH:
            await self.backend.remove(session_id)

    async def close(self) -> None:
        await self.backend.close()


class MemoryBackend:
    """Sessions in this process's memory: at most ``max_sessions`` (~2 KB each with a token), the
    least recently used dropped first. A restart logs everyone out; one process only."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._order: dict[str, int] = {}  # key -> when inserted (a tie-break for equal clocks)
        self._inserted = 0

    def __len__(self) -> int:
        return len(self._rows)

    async def insert(self, session: Session) -> None:
        key = digest(session.id)
        self._rows[key] = session.data()
        self._order[key], self._inserted = self._inserted, self._inserted + 1
        while len(self._rows) > self.max_sessions:
            self._order.pop(self._rows.popitem(last=False)[0], None)

    async def load(self, session_id: str) -> Session | None:
        key = digest(session_id)
        data = self._rows.get(key)
        if data is None:
            return None
        self._rows.move_to_end(key)
        return Session.from_data(session_id, data)

    async def update(self, session: Session) -> None:
        key = digest(session.id)
        if key in self._rows:  # a session deleted meanwhile (logout in another tab) stays deleted
            self._rows[key] = session.data()

    async def remove(self, session_id: str) -> None:
        self._rows.pop(digest(session_id), None)
        self._order.pop(digest(session_id), None)

    async def trim_person(self, tenant: str, sub: str, keep: int) -> None:
        mine = [
            (data["created_at"], self._order[key], key)
            for key, data in self._rows.items()
            if data["person"]["tenant"] == tenant and data["person"]["sub"] == sub
        ]
        for _, _, key in sorted(mine)[: max(0, len(mine) - keep)]:
            del self._rows[key], self._order[key]

    async def close(self) -> None:
        self._rows.clear()
        self._order.clear()
