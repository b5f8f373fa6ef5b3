"""Pure rules of tracked links: codes, destinations, visitor identity, click verdicts."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from advocacy_common.events.sharing import Verdict

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 10  # 62**10 ~ 8e17: unguessable, from a CSPRNG


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def is_code_shaped(code: str) -> bool:
    return 6 <= len(code) <= 32 and all(c in _BASE62 for c in code)


def destination(url: str, *, network: str, campaign: str) -> str:
    """The content URL with UTM parameters added, keeping the URL's own query."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")]
    query += [("utm_source", network), ("utm_medium", "employee_advocacy"), ("utm_campaign", campaign)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def with_click_id(dest: str, click_id: str) -> str:
    """Add ``adv_click`` to the query (before any fragment). ``dest`` always has a query (UTM)."""
    base, hash_, fragment = dest.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}adv_click={click_id}{hash_}{fragment}"


def visitor_hash(secret: str, day: date, ip: str, user_agent: str) -> str:
    """HMAC of IP + user agent with a key that rotates daily: no raw IP is kept."""
    key = hmac.new(secret.encode(), day.isoformat().encode(), hashlib.sha256).digest()
    return hmac.new(key, f"{ip}\x00{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


def decide_verdict(edge_verdict: Verdict | None, *, received_at: datetime) -> Verdict:
    """Skeleton rule: what the edge decided (bot for HEAD), otherwise counted."""
    return edge_verdict or Verdict.counted
