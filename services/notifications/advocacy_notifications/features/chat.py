"""Team channels: a tenant's Slack and Microsoft Teams webhooks, what is posted there, and posting it.

**Settings.** An admin saves the Slack incoming-webhook URL and the Teams Workflows webhook URL of
their tenant. Whoever holds such a URL can post to the channel, so it is a credential: stored, and
shown only masked (:func:`domain.mask_url`). It goes through the platform's outbound guard
(:mod:`advocacy_common.ssrf`, ADR 0009) when it is saved (shape, https, and every address its host
resolves to public: a 422 saying why otherwise) and again at each post (the guarded client resolves
once and dials only the addresses it checked, so a host that rebinds to 127.0.0.1 later is refused).
Removing a channel cancels its pending messages.

**Messages.** One row per tenant channel (``chat_messages``, unique per tenant on ``dedupe_key``),
its ``body`` the JSON payload as it will be posted (adapters/chat.py). A badge earned
(``badge.earned``) makes one per configured channel, if the person may be announced (gamification's
leaderboard visibility: :func:`domain.announce`) and while it is news.

**Posting**, with exactly the mail sender's rule (features/mail.py): one message per transaction,
its row locked ``FOR UPDATE SKIP LOCKED``, posted through the guard (short deadline, no redirects,
a bounded answer), marked ``sent`` and committed. A message recorded as sent is never posted again.
The window: a process killed after the receiver answered and before the commit (failpoint
``notifications.webhook.after_send``) leaves the row pending, and the next pass posts it again:
at most one duplicate per killed process (Slack and Teams offer no idempotency key). Killed before
the post (``notifications.webhook.before_send``), nothing was posted and the next pass posts it once.
A network error, a timeout, a 5xx or a 429 retries after 30 s x 2^(attempts-1), at most an hour, or
later when the receiver's ``Retry-After`` asks (bounded by the same hour), and gives up after
:data:`domain.CHAT_MAX_ATTEMPTS`; any other 4xx (a revoked URL, a refused payload) is permanent:
``failed``, with the receiver's reason.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from advocacy_common import failpoints
from advocacy_common.db import table_of
from advocacy_common.errors import NotFound, Unprocessable
from advocacy_common.events import Envelope
from advocacy_common.events.gamification import BadgeEarned
from advocacy_common.ssrf import OutboundGuard, UnsafeURL, bounded_request, check_url_shape, outbound_client
from advocacy_common.webhooks import retry_after
from advocacy_notifications import domain
from advocacy_notifications.adapters import chat as payloads
from advocacy_notifications.adapters.tombstones import TOMBSTONES
from advocacy_notifications.db import ChatChannelRow, ChatMessage, Member
from advocacy_notifications.domain import Announce, ChatChannel, MessageState
from advocacy_notifications.features import wording
from advocacy_notifications.settings import NotificationsSettings

if TYPE_CHECKING:  # httpx is loaded by the first client (outbound_client): issue 19
    import httpx

log = logging.getLogger("advocacy.notifications.chat")

_CHANNELS = table_of(ChatChannelRow)
_MESSAGES = table_of(ChatMessage)
# A failed attempt waits RETRY_BASE * 2^(attempts - 1), at most domain.RETRY_CAP (as mail).
RETRY_BASE = timedelta(seconds=30)
# How much of a receiver's refusal is kept as the reason (Slack answers "invalid_token", "no_service").
REASON_MAX = 300


def guard(settings: NotificationsSettings) -> OutboundGuard:
    return OutboundGuard.for_settings(allow_private=settings.webhook_allow_private)


# -- settings ----------------------------------------------------------------------------------


def _shown(row: Any) -> dict[str, Any]:
    return {"channel": ChatChannel(row.channel), "url": domain.mask_url(row.url), "updated_at": row.updated_at}


async def checked_url(url: str, settings: NotificationsSettings) -> str:
    """The URL as it will be stored, or a 422 saying what is wrong with it: bounded, http(s)
    without credentials, https unless private addresses are allowed, and resolving to public
    addresses only (the outbound guard)."""
    url = url.strip()
    if not url or len(url) > domain.CHAT_URL_MAX:
        raise Unprocessable.field("url", f"a webhook URL has 1 to {domain.CHAT_URL_MAX} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise Unprocessable.field("url", "a webhook URL has no spaces or control characters")
    try:
        host, port = check_url_shape(url)
        if urlsplit(url).scheme != "https" and not settings.webhook_allow_private:
            raise UnsafeURL("only https URLs are allowed")
        async with asyncio.timeout(settings.webhook_deadline_seconds):
            await guard(settings).resolve(host, port)
    except UnsafeURL as e:
        raise Unprocessable.field("url", str(e)) from e
    except TimeoutError as e:
        raise Unprocessable.field(
            "url", f"{host!r} did not resolve within {settings.webhook_deadline_seconds:g} s"
        ) from e
    return url


async def channels(session: AsyncSession, tenant_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            sa.select(_CHANNELS).where(_CHANNELS.c.tenant_id == tenant_id).order_by(_CHANNELS.c.channel)
        )
    ).all()
    return [_shown(r) for r in rows]


async def save_channel(
    session: AsyncSession, tenant_id: str, channel: ChatChannel, url: str, settings: NotificationsSettings
) -> dict[str, Any]:
    """Set (or replace) the tenant's webhook URL for ``channel``; pending messages go to the new one."""
    url = await checked_url(url, settings)
    stmt = pg_insert(_CHANNELS).values(
        tenant_id=tenant_id, channel=channel.value, url=url, updated_at=datetime.now(UTC)
    )
    row = (
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "channel"],
                set_={"url": stmt.excluded.url, "updated_at": stmt.excluded.updated_at},
            ).returning(_CHANNELS)
        )
    ).one()
    return _shown(row)


async def remove_channel(session: AsyncSession, tenant_id: str, channel: ChatChannel) -> int:
    """Forget the URL and cancel the channel's pending messages (returns how many)."""
    gone = await session.execute(
        sa.delete(_CHANNELS)
        .where(_CHANNELS.c.tenant_id == tenant_id, _CHANNELS.c.channel == channel.value)
        .returning(_CHANNELS.c.channel)
    )
    if gone.first() is None:
        raise NotFound(f"no {channel.value} channel is set")
    return await cancel_pending(session, tenant_id, channel=channel, reason="the channel was removed")


async def cancel_pending(
    session: AsyncSession,
    tenant_id: str,
    *,
    channel: ChatChannel | None = None,
    employee_id: str | None = None,
    reason: str,
) -> int:
    """Pending chat messages of the tenant (of one channel, or about one person) -> cancelled."""
    where = [_MESSAGES.c.tenant_id == tenant_id, _MESSAGES.c.state == MessageState.pending.value]
    if channel is not None:
        where.append(_MESSAGES.c.channel == channel.value)
    if employee_id is not None:
        where.append(_MESSAGES.c.employee_id == employee_id)
    res = await session.execute(
        sa.update(_MESSAGES).where(*where).values(state=MessageState.cancelled.value, last_error=reason[:1000])
    )
    return int(getattr(res, "rowcount", 0) or 0)


async def stop_if_hidden(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Hidden from the leaderboard (as the copy now says): their queued announcements are not posted."""
    seen = await session.scalar(
        sa.select(col(Member.leaderboard)).where(
            col(Member.tenant_id) == tenant_id, col(Member.employee_id) == employee_id
        )
    )
    if seen == "hidden":
        await cancel_pending(session, tenant_id, employee_id=employee_id, reason="hidden from the leaderboard")


async def forget(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Erasure: every chat message about the person goes (a pending one is never posted)."""
    await session.execute(
        sa.delete(_MESSAGES).where(_MESSAGES.c.tenant_id == tenant_id, _MESSAGES.c.employee_id == employee_id)
    )


# -- what is posted ------------------------------------------------------------------------------


async def queue(
    session: AsyncSession,
    tenant_id: str,
    *,
    key: Callable[[ChatChannel], str],
    category: str,
    segments: Sequence[payloads.Segment],
    employee_id: str | None,
    now: datetime,
    emoji: str = "",
) -> int:
    """One message per channel the tenant set, each once (its key); returns how many were new."""
    set_ = (await session.scalars(sa.select(_CHANNELS.c.channel).where(_CHANNELS.c.tenant_id == tenant_id))).all()
    made = 0
    for name in set_:
        channel = ChatChannel(name)
        stmt = pg_insert(_MESSAGES).values(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            channel=channel.value,
            employee_id=employee_id,
            dedupe_key=key(channel),
            category=category,
            body=payloads.payload(channel, segments, emoji=emoji),
            state=MessageState.pending.value,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        res = await session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"]))
        made += int(getattr(res, "rowcount", 0) or 0)
    return made


async def badge_earned(session: AsyncSession, env: Envelope[BadgeEarned], now: datetime | None = None) -> int:
    """A badge earned: announced in the tenant's team channels, named or not as the person's
    leaderboard visibility says, never for someone hidden, out of the programme or erased."""
    d = env.data
    now = now or datetime.now(UTC)
    if not domain.worth_announcing(d.earned_at, now):
        return 0
    if await TOMBSTONES.is_erased(session, env.tenant_id, d.employee_id):
        return 0
    person = await session.get(Member, (env.tenant_id, d.employee_id))
    how = domain.announce(
        known=person is not None,
        enrolled=person is not None and person.enrolled,
        active=person is not None and person.active,
        leaderboard=person.leaderboard if person is not None else "anonymous",
    )
    if how is Announce.not_at_all:
        return 0
    name = person.name if how is Announce.named and person is not None else None
    # a team channel is the tenant's: it reads the tenant's language (ADR 0018)
    language = await wording.tenant_language(session, env.tenant_id)
    return await queue(
        session,
        env.tenant_id,
        key=lambda ch: domain.badge_key(d.employee_id, d.badge, ch),
        category="badge",
        segments=payloads.badge_segments(name, d.badge, language.value),
        employee_id=d.employee_id,
        now=now,
        emoji="🏅",
    )


async def apply_gamification(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """Gamification's events the team channels announce (others are ignored)."""
    for env in events:
        if isinstance(env.data, BadgeEarned):
            await badge_earned(session, env)


# -- posting -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None
    retry_after: timedelta | None = None
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(col(ChatMessage.state) == MessageState.pending.value, col(ChatMessage.next_attempt_at) <= now)


async def post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], settings: NotificationsSettings, now: datetime
) -> Outcome:
    """One POST through the guarded client; what happened, never an exception. The URL (a
    credential) never appears in what is returned or logged."""
    import httpx  # loaded by the client already

    try:
        if urlsplit(url).scheme != "https" and not settings.webhook_allow_private:
            raise UnsafeURL("only https URLs are allowed")
        r = await bounded_request(
            client,
            "POST",
            url,
            deadline=settings.webhook_deadline_seconds,
            max_bytes=settings.webhook_max_response_bytes,
            headers={"content-type": "application/json"},
            content=orjson.dumps(body),
        )
    except UnsafeURL as e:
        return Outcome(error=f"refused by the outbound guard: {e}", permanent=True)
    except TimeoutError:
        return Outcome(error=f"no complete answer within {settings.webhook_deadline_seconds:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        return Outcome(error=f"{type(e).__name__}: {e}".replace(url, domain.mask_url(url)))
    except Exception as e:  # whatever a receiver's answer provokes is this attempt's failure, not the pass's
        log.warning("chat post: unexpected failure", exc_info=True)
        return Outcome(error=f"{type(e).__name__}: {e}".replace(url, domain.mask_url(url)))
    if 200 <= r.status_code < 300:
        return Outcome(status_code=r.status_code)
    said = r.body[:REASON_MAX].decode("utf-8", "replace").strip()
    return Outcome(
        status_code=r.status_code,
        error=f"HTTP {r.status_code}" + (f": {said}" if said else ""),
        retry_after=retry_after(r.headers.get("retry-after"), now),
        permanent=not domain.chat_retryable(r.status_code),
    )


async def deliver_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: NotificationsSettings,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Post the due chat messages, at most ``settings.webhook_batch`` attempts; returns how many
    were sent."""
    async with sessionmaker() as session:
        due = await session.scalar(sa.select(sa.func.count()).select_from(ChatMessage).where(_due(clock())))
    if not due:
        return 0
    sent = 0
    # Channels that failed in this pass (a receiver down, slow or refusing): their other messages
    # wait for the next pass, so one bad channel costs a pass one attempt, not one per message.
    failing: set[tuple[str, str]] = set()
    async with outbound_client(guard(settings), timeout=settings.webhook_deadline_seconds) as client:
        for _ in range(settings.webhook_batch):
            outcome = await _deliver_one(sessionmaker, client, settings, clock(), failing)
            if outcome is None:
                break
            sent += outcome
    return sent


async def _deliver_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    settings: NotificationsSettings,
    now: datetime,
    failing: set[tuple[str, str]],
) -> int | None:
    """One message in its own transaction: 1 sent, 0 not (retried later, failed or cancelled),
    None when nothing is due (on a channel that has not failed in this pass)."""
    skip = sa.tuple_(col(ChatMessage.tenant_id), col(ChatMessage.channel)).not_in(sorted(failing))
    async with sessionmaker() as session, session.begin():
        row = await session.scalar(
            select(ChatMessage)
            .where(_due(now), skip)
            .order_by(col(ChatMessage.next_attempt_at), col(ChatMessage.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None
        url = await session.scalar(
            sa.select(_CHANNELS.c.url).where(_CHANNELS.c.tenant_id == row.tenant_id, _CHANNELS.c.channel == row.channel)
        )
        if url is None:  # removed meanwhile (removal cancels; this is the race's other side)
            row.state = MessageState.cancelled.value
            row.last_error = "the channel was removed"
            return 0
        failpoints.hit("notifications.webhook.before_send")
        outcome = await post(client, url, row.body, settings, now)
        row.attempts += 1
        if outcome.delivered:
            failpoints.hit("notifications.webhook.after_send")
            row.state = MessageState.sent.value
            row.sent_at = now
            row.last_error = None
            return 1
        row.last_error = (outcome.error or "")[:1000]
        failing.add((row.tenant_id, row.channel))
        if outcome.permanent or row.attempts >= domain.CHAT_MAX_ATTEMPTS:
            row.state = MessageState.failed.value
            if not outcome.permanent:
                row.last_error = f"gave up after {row.attempts} attempts: {row.last_error}"[:1000]
        else:
            wait = domain.retry_delay(row.attempts, RETRY_BASE)
            if outcome.retry_after is not None:
                wait = max(wait, min(outcome.retry_after, domain.RETRY_CAP))
            row.next_attempt_at = now + wait
        log.warning(
            "chat message not delivered",
            extra={"message_id": row.id, "channel": row.channel, "state": row.state, "error": row.last_error[:300]},
        )
    return 0
