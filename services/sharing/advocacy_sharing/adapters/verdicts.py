"""Who clicked: bot detection and click enrichment (device, browser, OS, referrer domain, country).

These run in the verdict worker, never on the redirect's hot path: crawlerdetect costs ~300 us and
ua-parser ~100 us per uncached call, several times what a redirect may spend. Both are cached per
user-agent string (real traffic is a few thousand distinct strings, Zipf-distributed).

A bot is any of: a crawler known to crawlerdetect, a crawler matching the crawler-user-agents
patterns (the two lists complement each other), or a link-preview fetcher of a network we share to
(LinkedIn, Slack, X, Facebook, WhatsApp, Telegram, Discord, Teams, Apple, Google...). An empty user
agent is a bot too: every browser sends one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import crawleruseragents  # type: ignore[import-untyped]
from crawlerdetect import CrawlerDetect
from ua_parser import parse as parse_ua

# Link-preview fetchers (and unfurlers) that hit every shared link: not people.
PREVIEW_FETCHERS = re.compile(
    r"linkedinbot|slackbot|slack-imgproxy|twitterbot|facebookexternalhit|facebot|facebookcatalog"
    r"|meta-external|whatsapp/|telegrambot|discordbot|skypeuripreview|microsoft teams|msteams|teams-link-preview"
    r"|applebot|google-pagerenderer|googleother|google-inspectiontool|google-read-aloud|googlebot|storebot-google"
    r"|iframely|embedly|redditbot|pinterest|vkshare|bitlybot|mastodon/|bluesky|cardyb|xing-contenttabreceiver"
    r"|snapchat|viber|line-poker|kakaotalk-scrap|zoominfobot|yahoo! slurp|bingpreview|outlook-iOS-linkpreview",
    re.IGNORECASE,
)

_detector = CrawlerDetect()


@lru_cache(maxsize=65536)
def is_bot(user_agent: str) -> bool:
    ua = user_agent.strip()
    if not ua:
        return True
    if PREVIEW_FETCHERS.search(ua):
        return True
    if crawleruseragents.is_crawler(ua):
        return True
    return bool(_detector.isCrawler(ua))


@dataclass(frozen=True, slots=True)
class Device:
    device: str | None  # mobile | tablet | desktop | other
    browser: str | None
    os: str | None


_DESKTOP_OS = ("Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "FreeBSD", "Debian")


@lru_cache(maxsize=65536)
def device_of(user_agent: str) -> Device:
    if not user_agent:
        return Device(None, None, None)
    r = parse_ua(user_agent)
    browser = r.user_agent.family if r.user_agent and r.user_agent.family != "Other" else None
    os_name = r.os.family if r.os and r.os.family != "Other" else None
    family = r.device.family if r.device else "Other"
    low = user_agent.lower()
    if "ipad" in low or "tablet" in low or (os_name == "Android" and "mobile" not in low):
        kind = "tablet"
    elif os_name in ("iOS", "Android") or "mobile" in low or family not in ("Other", "Mac", ""):
        kind = "mobile"
    elif os_name in _DESKTOP_OS:
        kind = "desktop"
    else:
        kind = "other"
    return Device(kind, browser, os_name)


def referrer_domain(referrer: str | None) -> str | None:
    """The host of the Referer header, lower case, without ``www.`` (None when absent or garbage)."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    return host.removeprefix("www.")[:255] or None


_COUNTRY = re.compile(r"^[A-Z]{2}$")


def country_code(raw: str | None) -> str | None:
    """An ISO 3166 alpha-2 code from the trusted header (``XX``/``T1`` and garbage are dropped)."""
    if not raw:
        return None
    code = raw.strip().upper()
    if not _COUNTRY.match(code) or code in ("XX", "T1"):
        return None
    return code


# User agents already classified (the lru caches above hold them). Real traffic is a few thousand
# distinct strings; bounded like the caches.
_WARM: set[str] = set()


def cold(user_agents: set[str]) -> set[str]:
    """The user agents not classified yet (most batches: none, and no thread hop is needed)."""
    return user_agents - _WARM


def warm(user_agents: set[str]) -> None:
    """Classify and parse user agents into the caches. The verdict worker runs this in a thread for
    the batch's new user agents, so an uncached one (~1 ms) never holds the event loop (in role
    ``all`` the same loop answers redirects)."""
    for ua in user_agents:
        is_bot(ua)
        device_of(ua)


def mark_warm(user_agents: set[str]) -> None:
    """Remember them as classified (called on the event loop once ``warm`` has returned)."""
    if len(_WARM) + len(user_agents) > 65536:
        _WARM.clear()
    _WARM.update(user_agents)
