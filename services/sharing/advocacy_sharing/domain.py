"""Pure rules of tracked links: codes, destinations, visitor identity, verdicts, authenticity.

Nothing here imports FastAPI, a session or Kafka; the clock is always passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import unquote_plus, urlencode

from advocacy_common.events.sharing import Verdict
from advocacy_common.urls import RefusedURL, canonical_url

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 10  # 62**10 ~ 8e17: unguessable, from a CSPRNG
MIN_CODE, MAX_CODE = 8, 32

# A visitor clicking the same link again within this window is a duplicate; a click by the
# sharer (same visitor key as the request that created the share) within it is a self-click.
DUPLICATE_WINDOW = timedelta(hours=24)
SELF_WINDOW = timedelta(hours=24)


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def is_code_shaped(code: str) -> bool:
    # base62 is exactly ASCII letters and digits
    return MIN_CODE <= len(code) <= MAX_CODE and code.isascii() and code.isalnum()


def destination(url: str, *, network: str, campaign: str) -> str:
    """``url`` (canonical: :func:`advocacy_common.urls.canonical_url`) with UTM parameters. Its own
    query parameters stay as written, but for ``utm_*`` and ``adv_click``; nothing before the query
    is touched or parsed again, so the host is the one the URL was approved with."""
    base, hash_, fragment = url.partition("#")
    path, _, query = base.partition("?")
    kept = [p for p in query.split("&") if p and not _ours(p)]
    utm = urlencode([("utm_source", network), ("utm_medium", "employee_advocacy"), ("utm_campaign", campaign)])
    return f"{path}?{'&'.join([*kept, utm])}{hash_}{fragment}"


def _ours(param: str) -> bool:
    key = unquote_plus(param.partition("=")[0])
    return key.startswith("utm_") or key == "adv_click"


def link_destination(url: str, *, network: str, campaign: str) -> str | None:
    """Where a link sends its visitors: the content URL in its canonical form with UTM parameters,
    or None when the URL is one the platform now refuses (the link answers 410). URLs stored before
    URLs were canonical are canonicalised here, so an old row cannot reopen the open redirect."""
    try:
        canonical = canonical_url(url)
    except RefusedURL:
        return None
    return destination(canonical, network=network, campaign=campaign)


def click_id_slot(dest: str) -> tuple[str, str]:
    """(before, after): the redirect's Location is ``before + click_id + after`` (``adv_click`` goes
    into the query, before any fragment)."""
    base, hash_, fragment = dest.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}adv_click=", f"{hash_}{fragment}"


def with_click_id(dest: str, click_id: str) -> str:
    before, after = click_id_slot(dest)
    return f"{before}{click_id}{after}"


# -- visitors -----------------------------------------------------------------------------------------
def day_key(secret: str, day: date) -> bytes:
    """The visitor key of one UTC day: derived from the secret, so it rotates daily."""
    return hmac.new(secret.encode(), day.isoformat().encode(), hashlib.sha256).digest()


def visitor_hash_with_key(key: bytes, ip: str, user_agent: str) -> str:
    """Keyed BLAKE2b (a MAC, like HMAC, and ~3x cheaper) of IP + user agent: no raw IP is kept."""
    return hashlib.blake2b(f"{ip}\x00{user_agent}".encode(), key=key, digest_size=16).hexdigest()


def visitor_hashes(today: bytes, yesterday: bytes, ip: str, user_agent: str) -> tuple[str, str]:
    """The visitor under today's and yesterday's key (the redirect needs both)."""
    msg = f"{ip}\x00{user_agent}".encode()
    return (
        hashlib.blake2b(msg, key=today, digest_size=16).hexdigest(),
        hashlib.blake2b(msg, key=yesterday, digest_size=16).hexdigest(),
    )


def visitor_hash(secret: str, day: date, ip: str, user_agent: str) -> str:
    return visitor_hash_with_key(day_key(secret, day), ip, user_agent)


class VisitorKeys:
    """Today's and yesterday's keys, derived once per day (the redirect's hot path uses this)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._day = -1
        self._today = b""
        self._yesterday = b""

    def keys(self, epoch_day: int) -> tuple[bytes, bytes]:
        if epoch_day != self._day:
            d = date.fromordinal(date(1970, 1, 1).toordinal() + epoch_day)
            self._today = day_key(self.secret, d)
            self._yesterday = day_key(self.secret, d - timedelta(days=1))
            self._day = epoch_day
        return self._today, self._yesterday


# -- verdicts ------------------------------------------------------------------------------------------
# Reasons of bot verdicts decided without the user agent (the user-agent reasons are in
# adapters/verdicts.py): a HEAD request (link checkers and unfurlers; a browser GETs), and a bot
# verdict the edge gave for another reason.
HEAD_REQUEST = "head_request"
EDGE_BOT = "edge_bot"


@dataclass(frozen=True, slots=True)
class ClickFacts:
    """What the verdict depends on, gathered by the caller."""

    is_bot: bool
    edge_verdict: Verdict | None
    is_self: bool
    is_duplicate: bool


def decide_verdict(facts: ClickFacts) -> Verdict:
    """Precedence when several apply: bot, rate_limited, self, duplicate; otherwise counted."""
    if facts.is_bot or facts.edge_verdict is Verdict.bot:
        return Verdict.bot
    if facts.edge_verdict is Verdict.rate_limited:
        return Verdict.rate_limited
    if facts.is_self:
        return Verdict.self
    if facts.is_duplicate:
        return Verdict.duplicate
    return Verdict.counted


# -- automated fetchers that look like browsers ------------------------------------------------------------
# Mail security scanners (Defender Safe Links, Mimecast, Proofpoint, Barracuda) open every link of a
# message as it is delivered, from a few addresses of one network, with a browser's user agent. A
# share's link is delivered when the share is made; a person cannot read the post and click within
# seconds, and several people of one network cannot all do so within one second. So: at least
# BURST_MIN clicks on one link from one network (IPv4 /24, IPv6 /48) within BURST_WINDOW, starting
# within SCANNER_WINDOW of the share's creation, are ``scanner_timing`` bots. Measured on its own
# in tests/unit/test_sharing_domain.py and bench verdicts: no click of a person alone on their
# network, or later than SCANNER_WINDOW, is ever caught.
SCANNER_TIMING = "scanner_timing"
SCANNER_WINDOW = timedelta(seconds=3)
BURST_WINDOW = timedelta(seconds=1)
BURST_MIN = 3
# Every browser sends Accept-Language on a navigation (desktop, phone, in-app webviews, headless
# Chromium too); mail scanners and scripts that borrow a browser's user agent often do not. The edge
# records whether the header came (``ClickReceived.accept_language``, ``clicks.accept_language``); a
# click whose user agent passed the browser-evidence rules but came without it is a
# ``no_accept_language`` bot. None (a producer older than the field) is not judged. Measured on its
# own in bench verdicts (the corpora are user agents: stated there how) and on the real Chromium of
# tests/e2e/test_console_browser.py, whose clicks count.
NO_ACCEPT_LANGUAGE = "no_accept_language"


def header_reason(accept_language: bool | None) -> str | None:
    """``no_accept_language`` when the request came without the header (False); None when it came
    with it (True) or nobody recorded whether it did (None)."""
    return NO_ACCEPT_LANGUAGE if accept_language is False else None


def network_of(ip: str) -> str | None:
    """The visitor's network for the burst rule: the /24 of an IPv4 address, the /48 of an IPv6 one
    (as much of an address as analytics keeps when it anonymises one). None for garbage."""
    if ip.count(".") == 3 and ":" not in ip:
        head = ip.rpartition(".")[0]
        if all(p.isdigit() and int(p) < 256 for p in ip.split(".")):
            return f"{head}.0/24"
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return network_of(str(addr.ipv4_mapped))
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def is_fresh(at: datetime, share_created_at: datetime) -> bool:
    """Within SCANNER_WINDOW of the share's creation (a click recorded a little before it, by another
    process's clock, too)."""
    return -BURST_WINDOW <= at - share_created_at < SCANNER_WINDOW


def scanner_reason(at: datetime, share_created_at: datetime, neighbours: Iterable[datetime]) -> str | None:
    """``scanner_timing`` when this click is fresh and, with the other clicks on the link from its
    network (``neighbours``), makes BURST_MIN within BURST_WINDOW of one another."""
    if not is_fresh(at, share_created_at):
        return None
    near = sorted([at, *(t for t in neighbours if abs(t - at) <= BURST_WINDOW)])
    # some window of BURST_WINDOW holding this click and BURST_MIN - 1 others
    for i in range(len(near) - BURST_MIN + 1):
        if near[i + BURST_MIN - 1] - near[i] <= BURST_WINDOW and near[i] <= at <= near[i + BURST_MIN - 1]:
            return SCANNER_TIMING
    return None


def is_allowed(user_agent: str, ip_network: str | None, user_agents: Iterable[str], networks: Iterable[str]) -> bool:
    """The tenant allow-listed this click's user agent (a case-insensitive substring) or its network
    (the visitor's /24 or /48 inside one of ``networks``, CIDRs already validated)."""
    low = user_agent.lower()
    if any(s.lower() in low for s in user_agents):
        return True
    if not ip_network:
        return False
    try:
        mine = ipaddress.ip_network(ip_network)
    except ValueError:
        return False
    for raw in networks:
        net = ipaddress.ip_network(raw)
        if net.version == mine.version and mine.subnet_of(net):  # type: ignore[arg-type]
            return True
        if net.version == mine.version and net.subnet_of(mine):  # type: ignore[arg-type]
            return True  # an allowed range narrower than the /24 it falls in
    return False


def is_self_click(
    *,
    creator_visitor: str | None,
    share_created_at: datetime,
    visitor: str,
    visitor_prev: str | None,
    at: datetime,
) -> bool:
    """The sharer's own click: the visitor key equals the one of the request that created the share
    (today's or, across midnight, yesterday's key), within 24 h of creating it."""
    if not creator_visitor:
        return False
    if not (timedelta(0) - timedelta(minutes=5) <= at - share_created_at < SELF_WINDOW):
        return False
    return creator_visitor in (visitor, visitor_prev)


def is_duplicate(counted_before: Iterable[datetime], at: datetime) -> bool:
    """Another counted click by the same visitor on the same link within 24 h (either side: a late
    replay of an earlier click is judged against the later one that was already counted)."""
    return any(abs(at - t) < DUPLICATE_WINDOW for t in counted_before)


# -- authenticity ----------------------------------------------------------------------------------------
_URLISH = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)


def message_words(text: str) -> list[str]:
    """Words of a message for comparison: links dropped, accents and case folded."""
    text = _URLISH.sub(" ", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return _WORD.findall(text)


def _shingles(words: list[str], n: int = 3) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of word 3-shingles (1.0: the same words in the same order)."""
    sa, sb = _shingles(message_words(a)), _shingles(message_words(b))
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def near_identical_count(message: str, others: Iterable[str], threshold: float) -> int:
    """How many of ``others`` are identical or nearly so to ``message``."""
    mine = _shingles(message_words(message))
    if not mine:
        return 0
    n = 0
    for other in others:
        theirs = _shingles(message_words(other))
        if theirs and len(mine & theirs) / len(mine | theirs) >= threshold:
            n += 1
    return n


AUTHENTICITY_WARNING = (
    "{n} colleagues already posted this message, or nearly the same, for this content: "
    "personalise it (twenty identical posts look fake)."
)
