"""The hot path: ``GET|HEAD /r/{code}``, answered by a pure ASGI layer in front of the app.

Per request the redirect does only cheap things: a dict lookup in the link cache, a rate-limit
counter, two keyed hashes (today's and yesterday's visitor key), a signed click id, one JSON dump and
one ``write`` to the click journal; then it answers 302 (or 404/410/414/429). No database and no
broker while the visitor waits, and no FastAPI routing or middleware (measured: they cost more than
the redirect itself). Bot detection and enrichment happen in the verdict worker (features/clicks.py
with adapters/verdicts.py).

The link cache maps code -> where to send the visitor. A miss reads the database once (unknown codes
are remembered briefly too). Content archive/expiry/update events update the cache at once in the
process that consumes them; an API-only replica learns within ``link_cache_ttl_seconds``: a
background task re-reads the entries older than that, in batches of a few hundred codes per query
(the first version refreshed each stale entry on its own request: every link loaded together expired
together, and the burst of single-row queries showed up as p99 spikes and 5 % of the profile).
Expiry by date needs no event: it is checked on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from time import perf_counter
from typing import Any, ClassVar

import orjson
import sqlalchemy as sa
from fastapi import FastAPI
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import Receive, Scope, Send

from advocacy_common import tracing
from advocacy_common.db import table_of
from advocacy_common.net import ClientAddress, is_ipv4
from advocacy_sharing import domain
from advocacy_sharing.adapters.admission import Admission
from advocacy_sharing.adapters.clickid import ClickIds
from advocacy_sharing.adapters.emitter import ClickSender
from advocacy_sharing.adapters.ratelimit import RateLimiter
from advocacy_sharing.adapters.spool import ClickJournal, encode
from advocacy_sharing.db import ContentCopy, Share
from advocacy_sharing.settings import SharingSettings

log = logging.getLogger("advocacy.sharing.redirect")
SHARES = table_of(Share)
COPIES = table_of(ContentCopy)

MAX_PATH = 512
# Requests on /r/{code} by answer are plain integers on the redirector (a prometheus Counter takes
# a lock per increment, 2 % of the profile), read by a collector when /metrics is scraped.
_ANSWER_STATUSES = (302, 404, 405, 410, 414, 429, 503)
#: The samples the redirect exports. Its collector is registered when a :class:`Redirector` is made,
#: so a registry read at import does not show them (the deploy tests check alerts against this).
REDIRECT_METRICS = frozenset(
    {
        "advocacy_redirect_duration_seconds_bucket",
        "advocacy_redirect_duration_seconds_count",
        "advocacy_redirect_duration_seconds_sum",
        "advocacy_redirects_total",
        "advocacy_click_journal_bytes",
        "advocacy_click_journal_volume_free_ratio",
        "advocacy_redirect_admit_ratio",
        "advocacy_event_loop_lag_seconds",
        "advocacy_event_loop_lag_max_seconds",
        "advocacy_redirects_shed_total",
    }
)


class Latency:
    """A histogram of /r/ answer times as plain numbers (a prometheus Histogram takes a lock per
    observation): bucket counts by upper bound, read at scrape time."""

    BOUNDS: ClassVar[tuple[float, ...]] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(self.BOUNDS) + 1)  # the last is above every bound (+Inf)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.BOUNDS, seconds)] += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, int]]:
        """Cumulative counts per ``le``, as the exposition format has them."""
        out, total = [], 0
        for bound, n in zip((*map(str, self.BOUNDS), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class _AnswersCollector:
    """Reads one redirector's counters and admission state at scrape time. The process's registry
    holds the collector of the newest redirector only (:meth:`attach`)."""

    _current: ClassVar[_AnswersCollector | None] = None

    def __init__(self, redirector: Redirector) -> None:
        self.redirector = redirector

    @classmethod
    def attach(cls, redirector: Redirector) -> None:
        if cls._current is not None:
            REGISTRY.unregister(cls._current)
        cls._current = cls(redirector)
        REGISTRY.register(cls._current)

    def describe(self) -> Any:
        """The families without reading anything: registering the collector (when a redirector is
        made, before its journal may be open) must not read the redirector."""
        yield HistogramMetricFamily("advocacy_redirect_duration_seconds", "", buckets=[("+Inf", 0)], sum_value=0)
        yield GaugeMetricFamily("advocacy_click_journal_bytes", "", labels=["kind"])
        yield GaugeMetricFamily("advocacy_click_journal_volume_free_ratio", "")
        yield CounterMetricFamily("advocacy_redirects", "", labels=["status"])
        yield GaugeMetricFamily("advocacy_redirect_admit_ratio", "")
        yield GaugeMetricFamily("advocacy_event_loop_lag_seconds", "")
        yield GaugeMetricFamily("advocacy_event_loop_lag_max_seconds", "")
        yield CounterMetricFamily("advocacy_redirects_shed", "", labels=["reason"])

    def collect(self) -> Any:
        latency = self.redirector.latency
        yield HistogramMetricFamily(
            "advocacy_redirect_duration_seconds",
            "Time to answer /r/{code}, from the request reaching the app to the response sent",
            buckets=latency.buckets(),
            sum_value=latency.sum,
        )
        journal = self.redirector.journal
        sizes = GaugeMetricFamily(
            "advocacy_click_journal_bytes", "The click journal on disk: unsent clicks, and all of it", labels=["kind"]
        )
        sizes.add_metric(["unsent"], journal.pending_bytes())
        sizes.add_metric(["total"], journal.total_bytes())
        yield sizes
        yield GaugeMetricFamily(
            "advocacy_click_journal_volume_free_ratio",
            "Free space on the click journal's volume (0..1)",
            value=journal.volume_free_ratio(),
        )
        family = CounterMetricFamily("advocacy_redirects", "Requests on /r/{code} by answer", labels=["status"])
        for status, n in self.redirector.answers.items():
            family.add_metric([str(status)], n)
        yield family
        adm = self.redirector.admission
        yield GaugeMetricFamily(
            "advocacy_redirect_admit_ratio", "Fraction of /r/ requests admitted (1 = no shedding)", value=adm.admit
        )
        yield GaugeMetricFamily("advocacy_event_loop_lag_seconds", "Event-loop lag at the last tick", value=adm.lag)
        yield GaugeMetricFamily(
            "advocacy_event_loop_lag_max_seconds", "Largest event-loop lag since start", value=adm.max_lag
        )
        shed = CounterMetricFamily("advocacy_redirects_shed", "/r/ requests answered 503", labels=["reason"])
        shed.add_metric(["overload"], adm.shed)
        shed.add_metric(["link_loads"], adm.shed_loads)
        yield shed


@dataclass(slots=True)
class LinkTarget:
    tenant_id: str
    content_id: str
    network: str
    before: bytes  # Location = before + click_id + after
    after: bytes
    expires_at: float | None  # epoch seconds
    gone: bool  # archived / expired / unpublished
    loaded_at: float


_MISSING = object()

#: What one cached link costs beyond the characters of its strings: the LinkTarget, the headers of
#: its str and bytes objects, its dict slots and the reverse-index set entry. Measured with
#: tracemalloc on CPython 3.11 (50,000 links of 44-byte URLs: 712 bytes each, 77 of them characters).
LINK_OVERHEAD_BYTES = 640
#: New links read ahead at once (LinkCache.prefetch): each holds a database connection for one
#: indexed read; 8 of the pool's 10 is plenty for people sharing, and bounded for a loop.
PREFETCH_MAX = 8


def _cost(code: str, t: LinkTarget) -> int:
    return LINK_OVERHEAD_BYTES + len(code) + len(t.tenant_id) + len(t.content_id) + len(t.before) + len(t.after)


class LinkCache:
    """code -> LinkTarget (or None: unknown), bounded in entries and in bytes (long URLs make big
    entries: issue 12), refreshed by events and a TTL. The oldest entries go first."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        max_size: int = 200_000,
        ttl: float = 30.0,
        max_bytes: int = 64 * 1024 * 1024,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.max_size = max_size
        self.max_bytes = max_bytes
        self.bytes = 0  # the estimated size of what is cached (see _cost)
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self._links: dict[str, LinkTarget] = {}
        self._unknown: dict[str, float] = {}
        self._by_content: dict[tuple[str, str], set[str]] = {}
        self._prefetching: set[asyncio.Task[None]] = set()

    def peek(self, code: str) -> LinkTarget | object | None:
        """The cached answer without I/O: a LinkTarget, None (known unknown) or _MISSING."""
        t = self._links.get(code)
        if t is not None:
            return t
        seen = self._unknown.get(code)
        if seen is not None and self.clock() - seen < self.negative_ttl:
            return None
        return _MISSING

    async def get(self, code: str) -> LinkTarget | None:
        hit = self.peek(code)
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        return await self.load(code)

    async def load(self, code: str) -> LinkTarget | None:
        target = await self._load(code)
        self.put(code, target)
        return target

    def put(self, code: str, target: LinkTarget | None) -> None:
        if target is None:
            if len(self._unknown) >= 100_000:
                self._unknown.clear()
            self._unknown[code] = self.clock()
            self._links.pop(code, None)
            return
        self._unknown.pop(code, None)
        self._drop(code)
        cost = _cost(code, target)
        while self._links and (len(self._links) >= self.max_size or self.bytes + cost > self.max_bytes):
            self._drop(next(iter(self._links)))
        self._links[code] = target
        self.bytes += cost
        self._by_content.setdefault((target.tenant_id, target.content_id), set()).add(code)

    def _drop(self, code: str) -> None:
        t = self._links.pop(code, None)
        if t is not None:
            self.bytes -= _cost(code, t)
            held = self._by_content.get((t.tenant_id, t.content_id))
            if held is not None:
                held.discard(code)
                if not held:
                    del self._by_content[(t.tenant_id, t.content_id)]

    def forget(self, code: str) -> None:
        self._drop(code)
        self._unknown.pop(code, None)

    def content_changed(
        self,
        tenant_id: str,
        content_id: str,
        *,
        status: str,
        expires_at: datetime | None,
        url: str | None = None,
        slug: str | None = None,
    ) -> int:
        """Apply a content event to every cached link of that content; returns how many changed."""
        codes = self._by_content.get((tenant_id, content_id), set())
        now = self.clock()
        for code in list(codes):
            t = self._links.get(code)
            if t is None:
                continue
            refused = False
            if url is not None and slug is not None:
                slot = _slot(domain.link_destination(url, network=t.network, campaign=slug))
                refused = slot is None
                self.bytes -= _cost(code, t)
                t.before, t.after = slot or (b"", b"")
                self.bytes += _cost(code, t)
            t.gone = status != "published" or refused or not t.before
            t.expires_at = expires_at.timestamp() if expires_at else None
            t.loaded_at = now
        return len(codes)

    def __len__(self) -> int:
        return len(self._links)

    async def refresh_stale(self, batch: int = 500) -> int:
        """Re-read every entry older than the TTL, ``batch`` codes per query. Returns how many."""
        cutoff = self.clock() - self.ttl
        stale = [code for code, t in self._links.items() if t.loaded_at < cutoff]
        for start in range(0, len(stale), batch):
            chunk = stale[start : start + batch]
            found = await self._load_many(chunk)
            for code in chunk:
                self.put(code, found.get(code))
            await asyncio.sleep(0)
        return len(stale)

    def prefetch(self, code: str) -> None:
        """Read a link just created into the cache, in the background. Its first visits come within
        seconds of the share (the post goes out), and they should not wait on the database: a link
        loaded on its first visit is that visit's latency, and a database slow for a moment (another
        tenant's load, a checkpoint) is that visitor's wait. At most ``PREFETCH_MAX`` at once: beyond
        (a tenant creating links in a loop) a link loads on its first visit, as before."""
        if code in self._links or len(self._prefetching) >= PREFETCH_MAX:
            return
        task = asyncio.get_running_loop().create_task(self._prefetch(code))
        self._prefetching.add(task)
        task.add_done_callback(self._prefetching.discard)

    async def _prefetch(self, code: str) -> None:
        try:
            self.put(code, await self._load(code))
        except Exception as e:  # its first visit loads it
            log.warning("reading a new link ahead failed", extra={"error": f"{type(e).__name__}: {e}"})

    async def run_refresher(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(self.ttl / 3, 0.5))
            if stop.is_set():
                return
            try:
                await self.refresh_stale()
            except Exception as e:  # keep serving what we have
                log.warning("refreshing the link cache failed", extra={"error": f"{type(e).__name__}: {e}"})

    async def _load(self, code: str) -> LinkTarget | None:
        return (await self._load_many([code])).get(code)

    async def _load_many(self, codes: list[str]) -> dict[str, LinkTarget]:
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    sa.select(
                        SHARES.c.code,
                        SHARES.c.tenant_id,
                        SHARES.c.content_id,
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
                    .where(SHARES.c.code.in_(codes))
                )
            ).all()
        now = self.clock()
        return {row.code: self._target(row, now) for row in rows}

    @staticmethod
    def _target(row: Any, now: float) -> LinkTarget:
        slot = _slot(domain.link_destination(row.url, network=row.network, campaign=row.slug))
        before, after = slot or (b"", b"")
        return LinkTarget(
            tenant_id=row.tenant_id,
            content_id=row.content_id,
            network=row.network,
            before=before,
            after=after,
            expires_at=row.expires_at.timestamp() if row.expires_at else None,
            gone=row.status != "published" or slot is None,  # a URL now refused: 410
            loaded_at=now,
        )


def _slot(dest: str | None) -> tuple[bytes, bytes] | None:
    """The Location header's parts (a canonical URL is ASCII: WHATWG percent-encodes the rest)."""
    if dest is None:
        return None
    before, after = domain.click_id_slot(dest)
    return before.encode("ascii"), after.encode("ascii")


Prepared = tuple[dict[str, Any], dict[str, Any]]


def _plain(status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Prepared:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


_NOT_FOUND = _plain(404, b"link not found")
_GONE = _plain(410, b"this content is no longer available")
_TOO_LONG = _plain(414, b"URI too long")
_TOO_MANY = _plain(429, b"too many requests", [(b"retry-after", b"60")])
_NOT_ALLOWED = _plain(405, b"method not allowed", [(b"allow", b"GET, HEAD")])
_ERROR = _plain(500, b"internal error")
_HEAD_BODY = {"type": "http.response.body", "body": b""}


class Redirector:
    """Answers one /r/ request from the ASGI scope (no Request object, no routing)."""

    def __init__(
        self,
        settings: SharingSettings,
        cache: LinkCache,
        journal: ClickJournal,
        sender: ClickSender | None = None,
        *,
        admission: Admission | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.answers: dict[int, int] = dict.fromkeys(_ANSWER_STATUSES, 0)
        answers = self.answers
        self.latency = Latency()
        self.admission = admission or Admission(
            budget=settings.redirect_lag_budget_ms / 1000,
            min_admit=settings.redirect_min_admit,
            max_loads=settings.redirect_max_link_loads,
            min_rate=settings.redirect_shed_min_rate,
            count=lambda: sum(answers.values()),
        )
        _AnswersCollector.attach(self)
        self._busy = _plain(
            503,
            b"busy, try again shortly",
            [(b"retry-after", str(settings.redirect_retry_after_seconds).encode())],
        )
        self.cache = cache
        self.journal = journal
        self.sender = sender
        self.clock = clock
        self.addresses = ClientAddress(settings.trusted_proxies)
        # Parsing addresses (ipaddress) costs more than the rest of the redirect. One forwarded IPv4
        # address, the usual shape, is read without it (``_visitor_address``); for the others (several
        # hops, IPv6) the answers for the last ``redirect_address_cache_size`` of them are remembered
        # (docs/adr/0020 and 0029: a miss costs ~30 us for an IPv6 visitor; an entry holds ~250
        # bytes). Bounded in bytes by their keys' bounds (advocacy_common.caches): a forwarded-for
        # value is trimmed to 640 characters and a peer is an address, so 16,384 entries hold ~4 MB
        # (at most ~16 MB of 640-character headers); the network of an address (~230 bytes an entry)
        # is kept for as many addresses. The peers checked for trust are this host's neighbours: the
        # ClientAddress keeps 4,096 answers (x ~150 bytes).
        size = settings.redirect_address_cache_size
        self._resolve = lru_cache(maxsize=size)(self.addresses.resolve)
        self._network = lru_cache(maxsize=size)(domain.network_of)
        self._iso_second = -1
        self._iso_prefix = ""
        self.keys = domain.VisitorKeys(settings.visitor_secret)
        self.click_ids = ClickIds(settings.click_id_secret)
        self.limiter = RateLimiter(settings.rate_limit_per_minute, 60.0)
        self.country_header = settings.country_header.lower().encode("latin-1")

    def _visitor_address(self, peer: str, forwarded: str) -> tuple[str, str | None]:
        """The visitor's address and network when a proxy forwarded the request. One IPv4 address
        forwarded by a trusted proxy (the usual shape) is read at once, ~1.5 us, and remembered
        nowhere; anything else (several hops, IPv6, garbage, an untrusted peer) goes through the
        caches of recent visitors (ADR 0020, 0029), keyed by the header's last hops only: 8 KB
        values cannot fill them."""
        if is_ipv4(forwarded) and self.addresses.is_trusted(peer):
            return forwarded, domain.network_of(forwarded)  # resolve() answers the one hop itself
        ip = self._resolve(peer, ClientAddress.trim(forwarded))
        return ip, self._network(ip)

    def _iso(self, now: float, at_ms: int) -> str:
        """RFC 3339 with milliseconds; the seconds part is formatted once per second."""
        second = at_ms // 1000
        if second != self._iso_second:
            self._iso_prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._iso_second = second
        return f"{self._iso_prefix}.{at_ms % 1000:03d}+00:00"

    async def __call__(self, scope: Scope, send: Send) -> None:
        adm = self.admission
        if adm.admit < 1.0 and not adm.allow():  # overloaded: 503 before any work (admission.py)
            self.answers[503] += 1
            return await _answer(send, self._busy, scope["method"])
        path: str = scope["path"]
        method: str = scope["method"]
        if len(path) > MAX_PATH:
            self.answers[414] += 1
            return await _answer(send, _TOO_LONG, method)
        if method != "GET" and method != "HEAD":
            self.answers[405] += 1
            return await _answer(send, _NOT_ALLOWED, method)
        code = path[3:]
        if not domain.is_code_shaped(code):
            self.answers[404] += 1
            return await _answer(send, _NOT_FOUND, method)
        target = self.cache.peek(code)
        if target is _MISSING:
            if adm.loads >= adm.max_loads:  # a flood of misses must not queue on the database pool
                adm.shed_loads += 1
                self.answers[503] += 1
                return await _answer(send, self._busy, method)
            adm.loads += 1
            try:
                target = await self.cache.load(code)
            finally:
                adm.loads -= 1
        if target is None:
            self.answers[404] += 1
            return await _answer(send, _NOT_FOUND, method)
        assert isinstance(target, LinkTarget)
        now = self.clock()
        if target.gone or (target.expires_at is not None and target.expires_at <= now):
            self.answers[410] += 1
            return await _answer(send, _GONE, method)

        ua = xff = referer = country = None
        language = False
        country_name = self.country_header
        for k, v in scope["headers"]:
            if k == b"user-agent":
                ua = v
            elif k == b"x-forwarded-for":
                xff = v
            elif k == b"referer":
                referer = v
            elif k == b"accept-language":
                language = True
            elif k == country_name:
                country = v
        client = scope.get("client")
        peer = client[0] if client else ""
        ua_s = ua[:512].decode("latin-1") if ua else ""
        if xff is not None:
            ip, network = self._visitor_address(peer, xff.decode("latin-1").strip())
        else:
            ip, network = peer, self._network(peer)
        if country is not None and not self.addresses.is_trusted(peer):
            country = None
        today, yesterday = self.keys.keys(int(now // 86400))
        visitor, visitor_prev = domain.visitor_hashes(today, yesterday, ip, ua_s)
        edge = None
        if method == "HEAD":
            edge = "bot"
        if self.limiter.hit(code + visitor, now):
            edge = edge or "rate_limited"
            limited = True
        else:
            limited = False
        at_ms = int(now * 1000)
        click_id = self.click_ids.new(code, at_ms)
        at_iso = self._iso(now, at_ms)
        value = orjson.dumps(
            {
                "click_id": click_id,
                "code": code,
                "received_at": at_iso,
                "visitor": visitor,
                "visitor_prev": visitor_prev,
                "user_agent": ua_s,
                "method": method,
                "referrer": referer[:512].decode("latin-1") if referer else None,
                "country": country[:8].decode("latin-1") if country else None,
                "edge_verdict": edge,
                "ip_network": network,
                "accept_language": language,
            }
        )
        # the click's trace context goes with it (a sampled request: SharingAPI made its span)
        trace = tracing.current_texts() if tracing.ON else ()
        self.journal.append(encode(target.tenant_id, click_id, code, at_iso, value, trace))
        if self.sender is not None and self.sender.idle:
            self.sender.wake()
        if limited:
            self.answers[429] += 1
            return await _answer(send, _TOO_MANY, method)
        self.answers[302] += 1
        location = target.before + click_id.encode() + target.after
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [
                    (b"location", location),
                    (b"content-length", b"0"),
                    (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer-when-downgrade"),
                ],
            }
        )
        await send(_HEAD_BODY)


async def _traced(redirector: Redirector, scope: Scope, send: Send) -> None:
    """A sampled redirect in a server span of a trace of its own: a visitor's ``traceparent`` is
    not followed (anyone on the internet could otherwise join our traces or force their sampling).
    The redirects not sampled do no tracing work (measured: a span per request, even unrecorded,
    cost 45 µs of a 99 µs redirect)."""
    method = scope["method"]
    with tracing.tracer().start_as_current_span(
        f"{method} /r/{{code}}",
        context=tracing.new_trace(),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": "/r/{code}", tracing.PRESAMPLED: True},
    ) as span:

        async def _send(message: Any) -> None:
            if message["type"] == "http.response.start":
                span.set_attribute("http.response.status_code", message["status"])
            await send(message)

        try:
            await redirector(scope, _send)
        except Exception:
            log.exception("redirect failed", extra={"path": scope["path"][:100]})
            await _answer(_send, _ERROR, method)


async def _answer(send: Send, response: Prepared, method: str) -> None:
    await send(response[0])
    await send(_HEAD_BODY if method == "HEAD" else response[1])


class SharingAPI(FastAPI):
    """The sharing app: ``/r/...`` is answered before FastAPI and Starlette see the request (their
    outer layers, error middleware and telemetry hook cost more per request than the bare app's
    whole answer, the profile showed); everything else is the ordinary FastAPI app."""

    _redirector: Redirector | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/r/"):
            redirector = self._redirector
            if redirector is None:
                # the runtime's parts (advocacy_sharing.parts.SharingParts), once its start-up ran
                parts = getattr(getattr(self.state, "runtime", None), "parts", None)
                redirector = getattr(parts, "redirector", None)
                self._redirector = redirector
            if redirector is not None:
                began = perf_counter()
                if tracing.ON and tracing.sampled():
                    await _traced(redirector, scope, send)
                else:
                    try:
                        await redirector(scope, send)
                    except Exception:
                        log.exception("redirect failed", extra={"path": scope["path"][:100]})
                        await _answer(send, _ERROR, scope["method"])
                redirector.latency.observe(perf_counter() - began)
                return
        await super().__call__(scope, receive, send)
