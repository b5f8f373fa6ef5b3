"""The hot path: ``GET /r/{code}`` answers from memory and hands the click to the producer.

No database write and no broker round trip happen while the visitor waits: the link is looked up
in an in-process cache (filled from the database on a miss), the click event is appended to the
emitter's buffer, and a background task sends buffered clicks to Kafka in batches. On shutdown
the emitter drains its buffer before the producer stops, so a click that got its 302 is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from advocacy_common.events import Envelope, new_event
from advocacy_common.events.sharing import ClickReceived, Verdict
from advocacy_common.net import ClientAddress
from advocacy_common.runtime import Runtime
from advocacy_sharing import domain
from advocacy_sharing.db import ContentCopy, Share
from advocacy_sharing.settings import SharingSettings

log = logging.getLogger("advocacy.sharing.redirect")
SHARES = Share.__table__  # type: ignore[attr-defined]
COPIES = ContentCopy.__table__  # type: ignore[attr-defined]
SOURCE = "/advocacy/sharing"


@dataclass(frozen=True, slots=True)
class LinkTarget:
    tenant_id: str
    destination: str
    expires_at: datetime | None
    status: str


class LinkCache:
    """code -> LinkTarget, bounded; misses go to the database (one query)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_size: int) -> None:
        self.sessionmaker = sessionmaker
        self.max_size = max_size
        self._links: dict[str, LinkTarget | None] = {}

    async def get(self, code: str) -> LinkTarget | None:
        if code in self._links:
            return self._links[code]
        target = await self._load(code)
        if len(self._links) >= self.max_size:
            self._links.pop(next(iter(self._links)))
        self._links[code] = target
        return target

    def forget(self, code: str) -> None:
        self._links.pop(code, None)

    async def _load(self, code: str) -> LinkTarget | None:
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    sa.select(
                        SHARES.c.tenant_id,
                        SHARES.c.network,
                        COPIES.c.url,
                        COPIES.c.slug,
                        COPIES.c.expires_at,
                        COPIES.c.status,
                    )
                    .join(
                        COPIES,
                        sa.and_(
                            COPIES.c.tenant_id == SHARES.c.tenant_id,
                            COPIES.c.content_id == SHARES.c.content_id,
                        ),
                    )
                    .where(SHARES.c.code == code)
                )
            ).first()
        if row is None:
            return None
        dest = domain.destination(row.url, network=row.network, campaign=row.slug)
        return LinkTarget(row.tenant_id, dest, row.expires_at, row.status)


class ClickEmitter:
    """Buffers click events and sends them to Kafka in batches from a background task."""

    def __init__(self, send_timeout: float = 10.0) -> None:
        self.buffer: list[Envelope[ClickReceived]] = []
        self._wake = asyncio.Event()
        self.send_timeout = send_timeout
        self.sent = 0

    def emit(self, envelope: Envelope[ClickReceived]) -> None:
        self.buffer.append(envelope)
        self._wake.set()

    async def run(self, runtime: Runtime, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set() or self.buffer:
            if not self.buffer:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.5)
                self._wake.clear()
                continue
            producer = runtime.get_producer()
            if producer is None:
                if stop.is_set() and runtime.producer is None:
                    log.error("stopping with %d unsent clicks and no producer", len(self.buffer))
                    return
                await asyncio.sleep(0.1)
                continue
            batch, self.buffer = self.buffer, []
            try:
                futures = [
                    await producer.send(e.topic, e.value(), key=e.key.encode(), headers=e.headers()) for e in batch
                ]
                await asyncio.wait_for(asyncio.gather(*futures), self.send_timeout)
                self.sent += len(batch)
                backoff = 0.1
            except Exception as e:
                # Keep them, in order, ahead of newer clicks; a resend is deduplicated downstream.
                self.buffer[:0] = batch
                log.warning("click send failed (%s); %d clicks buffered", e, len(self.buffer))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)


class Redirector:
    def __init__(self, settings: SharingSettings, cache: LinkCache, emitter: ClickEmitter) -> None:
        self.settings = settings
        self.cache = cache
        self.emitter = emitter
        self.addresses = ClientAddress(settings.trusted_proxies)

    async def __call__(self, request: Request) -> Response:
        code: str = request.path_params["code"]
        if not domain.is_code_shaped(code):
            return PlainTextResponse("link not found", status_code=404)
        target = await self.cache.get(code)
        if target is None:
            return PlainTextResponse("link not found", status_code=404)
        now = datetime.now(UTC)
        if target.status != "published" or (target.expires_at is not None and target.expires_at <= now):
            return PlainTextResponse("this content is no longer available", status_code=410)
        click_id = uuid.uuid4().hex
        headers = request.headers
        peer = request.client.host if request.client else None
        ip = self.addresses.resolve(peer, headers.get("x-forwarded-for"))
        ua = headers.get("user-agent", "")[:512]
        is_head = request.method == "HEAD"
        event = ClickReceived(
            click_id=click_id,
            code=code,
            received_at=now,
            visitor=domain.visitor_hash(self.settings.visitor_secret, now.date(), ip, ua),
            user_agent=ua,
            method=request.method,
            referrer=(headers.get("referer") or None),
            edge_verdict=Verdict.bot if is_head else None,
        )
        self.emitter.emit(new_event(SOURCE, target.tenant_id, event, at=now, id=click_id))
        return RedirectResponse(domain.with_click_id(target.destination, click_id), status_code=302)
