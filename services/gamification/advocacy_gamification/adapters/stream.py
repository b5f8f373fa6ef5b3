"""Live boards over Server-Sent Events, served by every API replica.

- **Tickets.** EventSource cannot send headers, so a stream is opened with a short-lived ticket
  (``POST /v1/leaderboard/stream-tickets``), an ``advocacy_common.tickets`` ticket (purpose
  ``gamification.stream``) naming the tenant, the caller and the expiry, used once (its nonce is
  recorded in ``stream_ticket_uses``). Any replica verifies it with the shared key: from settings
  (``GAMIFICATION_STREAM_TICKET_SECRET``) or, if none is configured, a random key the first replica
  stores in the database and every other replica reads.
- **Changes.** The transaction that moves a tenant's totals runs ``pg_notify('gamification_board',
  tenant)`` (see ``ledger.notify_boards``); PostgreSQL delivers it on commit to every listener. Each
  API replica keeps one dedicated asyncpg connection that LISTENs, whichever worker applied the
  change; after a reconnect every board is re-read (notifications may have been missed).
- **Ends.** A stream ends when the token behind its ticket expires (the ticket carries the token's
  ``exp``) or when the person is erased (the erasure's transaction runs
  ``pg_notify('gamification_erased', ...)``); either way the last message is ``event: end`` with the
  reason, and the client needs a new ticket, which an erased person cannot redeem.
- **Fan-out.** One :class:`BoardFeed` per (tenant, window, team, size) reads the board when told it
  changed, at most every ``min_interval`` (0.1 s by default, settings), and publishes only if the top
  changed; every stream on that board sends the latest version, never faster than ``min_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from advocacy_common.auth import Principal
from advocacy_common.errors import TooManyRequests, Unauthorized
from advocacy_common.tickets import TicketSigner
from advocacy_gamification.adapters.ledger import BOARD_CHANNEL, ERASED_CHANNEL
from advocacy_gamification.adapters.reads import read_session
from advocacy_gamification.db import SECRETS

log = logging.getLogger("advocacy.gamification.stream")

TICKET_TTL = timedelta(seconds=60)
SECRET_NAME = "stream_ticket_key"


# -- tickets -----------------------------------------------------------------------------------------
# Signed and checked by advocacy_common.tickets (the one ticket format; sharing's share tickets are
# the same): "t" tenant, "s" person, "n" nonce (single use), "x" when the token behind it expires.
PURPOSE = "gamification.stream"


@dataclass(frozen=True, slots=True)
class TicketHolder:
    tenant_id: str
    sub: str
    nonce: str
    expires_at: datetime
    #: when the token the ticket was issued for expires: the stream ends then
    session_ends: datetime | None = None


def issue_ticket(sign: TicketSigner, who: Principal, now: datetime) -> tuple[str, datetime]:
    """A ticket for ``who`` to open one stream within :data:`TICKET_TTL`, and when it expires."""
    if who.expires_at is not None and who.expires_at <= now:  # accepted within the clock leeway
        raise Unauthorized("the token has expired: a stream would end at once")
    expires = now + TICKET_TTL
    claims: dict[str, Any] = {"t": who.tenant_id, "s": who.sub, "n": secrets.token_urlsafe(12)}
    if who.expires_at is not None:
        claims["x"] = math.floor(who.expires_at.timestamp())
    return sign.issue(claims, expires), expires.replace(microsecond=0)


def ticket_holder(sign: TicketSigner, ticket: str, now: datetime) -> TicketHolder:
    """Who a genuine, unexpired ticket is for; Unauthorized (401) for anything else."""
    claims = sign.verify(ticket, now)
    try:
        tenant, sub, nonce = str(claims["t"]), str(claims["s"]), str(claims["n"])
        expires = datetime.fromtimestamp(int(claims["e"]), UTC)
        ends = datetime.fromtimestamp(int(claims["x"]), UTC) if "x" in claims else None
    except (ValueError, KeyError, TypeError, OverflowError, OSError) as e:
        raise Unauthorized("malformed stream ticket") from e
    if ends is not None and now >= ends:
        raise Unauthorized("the token this ticket was issued for has expired")
    return TicketHolder(tenant, sub, nonce, expires, ends)


async def shared_key(sessionmaker: async_sessionmaker[AsyncSession], configured: str | None) -> bytes:
    """The ticket key every replica uses: the configured secret, else one stored in the database.

    Either is hashed, so the signer's own 32-byte check always passes; the configured secret itself
    is what is checked (at least 32 bytes, not a published value), by the settings outside dev mode
    (``GAMIFICATION_STREAM_TICKET_SECRET``, advocacy_common.signing_keys)."""
    if configured:
        return hashlib.sha256(configured.encode()).digest()
    async with sessionmaker() as session, session.begin():
        await session.execute(
            pg_insert(SECRETS).values(name=SECRET_NAME, value=secrets.token_urlsafe(48)).on_conflict_do_nothing()
        )
        value = await session.scalar(sa.select(SECRETS.c.value).where(SECRETS.c.name == SECRET_NAME))
    return hashlib.sha256(str(value).encode()).digest()


_USE = sa.text(
    "INSERT INTO stream_ticket_uses (nonce, expires_at) VALUES (:nonce, :expires_at) "
    "ON CONFLICT DO NOTHING RETURNING nonce"
)
_PURGE_USES = sa.text("DELETE FROM stream_ticket_uses WHERE expires_at < now() - interval '1 minute'")


class Tickets:
    """The replica's signer, its key read from settings or the database on first use. A ticket
    opens one stream, once, on any replica: its nonce is recorded when it is used (issue 12: one
    ticket opened any number of streams)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], configured: str | None, is_erased: IsErased
    ) -> None:
        self.sessionmaker = sessionmaker
        self.configured = configured
        self.is_erased = is_erased
        self._signer: TicketSigner | None = None
        self._lock = asyncio.Lock()

    async def issue(self, who: Principal) -> tuple[str, datetime]:
        return issue_ticket(await self.signer(), who, datetime.now(UTC))

    async def redeem(self, ticket: str) -> TicketHolder:
        """Verify ``ticket`` and spend it: a second use is a 401."""
        holder = ticket_holder(await self.signer(), ticket, datetime.now(UTC))
        async with self.sessionmaker() as session, session.begin():
            used = await session.scalar(_USE, {"nonce": holder.nonce, "expires_at": holder.expires_at})
            if secrets.randbelow(100) == 0:  # now and then, forget tickets long expired
                await session.execute(_PURGE_USES)
            gone = await self.is_erased(session, holder.tenant_id, holder.sub)
        if used is None:
            raise Unauthorized("stream ticket already used: ask for a new one")
        if gone:
            raise Unauthorized("this person has been erased")
        return holder

    async def signer(self) -> TicketSigner:
        if self._signer is None:
            async with self._lock:
                if self._signer is None:
                    self._signer = TicketSigner(await shared_key(self.sessionmaker, self.configured), PURPOSE)
        return self._signer


# Whether a person was erased, read in the session given (the members feature's; told, not imported).
IsErased = Callable[[AsyncSession, str, str], Awaitable[bool]]


# -- fan-out -----------------------------------------------------------------------------------------
FeedKey = tuple[str, str, str | None, int]  # tenant, window, team, size


@dataclass(eq=False)
class BoardFeed:
    key: FeedKey
    version: int = 0
    payload: bytes = b""
    subscribers: int = 0
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None

    async def publish(self, payload: bytes) -> None:
        async with self.changed:
            self.version += 1
            self.payload = payload
            self.changed.notify_all()


# What a feed shows: the board for a key, read in the session given (the leaderboard feature's
# live_board; the hub is told it, it does not import a use case).
Snapshot = Callable[[AsyncSession, FeedKey], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Open streams allowed at once in one process: per person, per tenant, in all, and distinct
    boards (window, team, size) per tenant (each board is a feed that reads the database up to 4
    times a second: invented team names must not multiply them)."""

    per_user: int = 5
    per_tenant: int = 500
    per_process: int = 5000
    feeds_per_tenant: int = 50
    retry_after_seconds: int = 5


@dataclass(eq=False)
class StreamSlot:
    tenant_id: str
    sub: str
    #: the stream ends then (the token behind the ticket expires), if ever
    ends_at: datetime | None = None
    #: why the stream was ended early (the person was erased), once it is
    ended: str | None = None
    released: bool = False


class BoardHub:
    def __init__(
        self,
        dsn: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        snapshot: Snapshot,
        *,
        min_interval: float = 0.1,
        keepalive: float = 15.0,
        refresh: float = 30.0,
        limits: StreamLimits | None = None,
    ) -> None:
        self.dsn = dsn
        self.limits = limits or StreamLimits()
        self.open_by_user: Counter[tuple[str, str]] = Counter()
        self.open_by_tenant: Counter[str] = Counter()
        self.open_total = 0
        self.slots: dict[tuple[str, str], set[StreamSlot]] = {}
        self.sessionmaker = sessionmaker
        self.snapshot = snapshot
        engine = sessionmaker.kw.get("bind")
        assert isinstance(engine, AsyncEngine), "the sessionmaker must be bound to an engine"
        self.engine = engine
        self.min_interval = min_interval
        self.keepalive = keepalive
        self.refresh = refresh  # re-read now and then anyway: a new week starts without a NOTIFY
        self.feeds: dict[FeedKey, BoardFeed] = {}
        self.listening = False
        self.notifications = 0
        self.closed = False
        self._wakers: set[asyncio.Task[None]] = set()

    # -- the listener ----------------------------------------------------------------------------------
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        for key, feed in self.feeds.items():
            if key[0] == payload:
                feed.dirty.set()

    def _on_erased(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            tenant_id, sub = orjson.loads(payload)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            log.warning("erasure notice not understood", extra={"payload": payload[:80]})
            return
        self.end_streams_of(str(tenant_id), str(sub), "erased")

    def end_streams_of(self, tenant_id: str, sub: str, reason: str) -> int:
        """End every stream this process holds for one person (erased); how many there were."""
        slots = self.slots.get((tenant_id, sub), set())
        for slot in slots:
            slot.ended = reason
        if slots:
            for key, feed in self.feeds.items():
                if key[0] == tenant_id:
                    self._wake(feed)
        return len(slots)

    def _wake(self, feed: BoardFeed) -> None:
        async def wake() -> None:
            async with feed.changed:
                feed.changed.notify_all()

        task = asyncio.get_running_loop().create_task(wake())
        self._wakers.add(task)
        task.add_done_callback(self._wakers.discard)

    def _mark_all(self) -> None:
        for feed in self.feeds.values():
            feed.dirty.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep one LISTEN connection open until ``stop``; reconnect with backoff."""
        backoff = 0.5
        while not stop.is_set():
            conn: Any = None
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=5, server_settings={"application_name": "gamification-listen"}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(BOARD_CHANNEL, self._on_notify)
                await conn.add_listener(ERASED_CHANNEL, self._on_erased)
                self.listening = True
                backoff = 0.5
                self._mark_all()  # anything missed while we were not listening
                while not stop.is_set() and not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 5)
                    if not stop.is_set() and not lost.is_set():
                        await asyncio.wait_for(conn.execute("SELECT 1"), 5)  # a dead socket shows here
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning(
                    "board listener failed, reconnecting",
                    extra={"error": f"{type(e).__name__}: {e}", "retry_in_s": backoff},
                )
            finally:
                self.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
        await self.close()

    async def close(self) -> None:
        """End every stream (shutting down: clients reconnect to another replica)."""
        self.closed = True
        for feed in list(self.feeds.values()):
            if feed.task is not None:
                feed.task.cancel()
            async with feed.changed:
                feed.changed.notify_all()

    # -- feeds -----------------------------------------------------------------------------------------
    def subscribe(self, key: FeedKey) -> BoardFeed:
        feed = self.feeds.get(key)
        if feed is None:
            feed = BoardFeed(key)
            feed.dirty.set()
            feed.task = asyncio.create_task(self._feed_loop(feed), name=f"board-feed-{key}")
            self.feeds[key] = feed
        feed.subscribers += 1
        return feed

    def unsubscribe(self, feed: BoardFeed) -> None:
        feed.subscribers -= 1
        if feed.subscribers <= 0 and self.feeds.get(feed.key) is feed:
            del self.feeds[feed.key]
            if feed.task is not None:
                feed.task.cancel()

    async def read(self, key: FeedKey) -> bytes:
        async with read_session(self.engine) as session:
            board = await self.snapshot(session, key)
        return orjson.dumps(board)

    async def _feed_loop(self, feed: BoardFeed) -> None:
        last = -math.inf
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.dirty.wait(), self.refresh)
            wait = last + self.min_interval - time.monotonic()
            if wait > 0:  # coalesce: everything that changes meanwhile is one read
                await asyncio.sleep(wait)
            feed.dirty.clear()
            last = time.monotonic()
            try:
                payload = await self.read(feed.key)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning(
                    "board feed read failed", extra={"feed": str(feed.key), "error": f"{type(e).__name__}: {e}"}
                )
                feed.dirty.set()
                await asyncio.sleep(1)
                continue
            if payload != feed.payload:
                await feed.publish(payload)

    def _news(self, feed: BoardFeed, seen: int, slot: StreamSlot) -> Callable[[], bool]:
        return lambda: feed.version > seen or self.closed or slot.ended is not None

    def reserve(self, tenant_id: str, sub: str, key: FeedKey, ends_at: datetime | None = None) -> StreamSlot:
        """A place for one more stream, or 429 with Retry-After naming the cap reached."""
        lim = self.limits
        why = None
        if self.open_total >= lim.per_process:
            why = f"this server holds {lim.per_process} streams"
        elif self.open_by_tenant[tenant_id] >= lim.per_tenant:
            why = f"the tenant has {lim.per_tenant} streams open here"
        elif self.open_by_user[(tenant_id, sub)] >= lim.per_user:
            why = f"you have {lim.per_user} streams open"
        elif key not in self.feeds and sum(1 for k in self.feeds if k[0] == tenant_id) >= lim.feeds_per_tenant:
            why = f"the tenant watches {lim.feeds_per_tenant} different boards here"
        if why is not None:
            raise TooManyRequests(f"too many live boards: {why}", headers={"Retry-After": str(lim.retry_after_seconds)})
        self.open_total += 1
        self.open_by_tenant[tenant_id] += 1
        self.open_by_user[(tenant_id, sub)] += 1
        slot = StreamSlot(tenant_id, sub, ends_at)
        self.slots.setdefault((tenant_id, sub), set()).add(slot)
        return slot

    def release(self, slot: StreamSlot) -> None:
        if slot.released:
            return
        slot.released = True
        self.open_total -= 1
        self.open_by_tenant[slot.tenant_id] -= 1
        self.open_by_user[(slot.tenant_id, slot.sub)] -= 1
        held = self.slots.get((slot.tenant_id, slot.sub))
        if held is not None:
            held.discard(slot)
            if not held:
                del self.slots[(slot.tenant_id, slot.sub)]

    async def events(self, key: FeedKey, slot: StreamSlot) -> AsyncIterator[bytes]:
        """The SSE body for one subscriber: the board now, then each change, then keep-alives, until
        the token expires or the person is erased. ``slot`` (from :meth:`reserve`) is given back
        when the stream ends."""
        try:
            async for chunk in self._events(key, slot):
                yield chunk
        finally:
            self.release(slot)

    async def _events(self, key: FeedKey, slot: StreamSlot) -> AsyncIterator[bytes]:
        if self.closed:
            return
        feed = self.subscribe(key)
        seen = 0
        last_sent = -math.inf
        try:
            yield b"retry: 2000\n\n"
            while not self.closed:
                wait = self.keepalive
                if slot.ends_at is not None:
                    wait = min(wait, (slot.ends_at - datetime.now(UTC)).total_seconds())
                if wait > 0 and slot.ended is None:
                    async with feed.changed:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(feed.changed.wait_for(self._news(feed, seen, slot)), wait)
                if self.closed:
                    return
                if slot.ended is None and slot.ends_at is not None and datetime.now(UTC) >= slot.ends_at:
                    slot.ended = "token_expired"
                if slot.ended is not None:
                    yield b'event: end\ndata: {"reason":"%s"}\n\n' % slot.ended.encode()
                    return
                if feed.version <= seen:
                    yield b": keep-alive\n\n"
                    continue
                wait = last_sent + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                seen, payload = feed.version, feed.payload
                last_sent = time.monotonic()
                yield b"event: leaderboard\nid: %d\ndata: %s\n\n" % (seen, payload)
        finally:
            self.unsubscribe(feed)
