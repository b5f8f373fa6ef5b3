"""Who clicked: the user-agent verdict and click enrichment (device, browser, OS, referrer domain, country).

These run in the verdict worker, never on the redirect's hot path, cached per user-agent string (real
traffic is a few thousand distinct strings, Zipf-distributed): an uncached verdict costs ~0.5 ms.

A click counts only with evidence of a person: its user agent parses as a real browser or an in-app
webview (:func:`browser_evidence`). Before that, three independent bot databases and the preview
rule name what they know. :func:`ua_reason` returns the first reason that applies, or None:

- ``ua_not_browser``: empty, or no browser engine/product token, or tokens a browser never sends
  (a URL or an e-mail address, ``compatible;`` without MSIE, an extended KHTML comment, a headless
  or automation engine, an engine token inconsistent with the family: ``Chrome/`` without
  ``AppleWebKit/``, ``Firefox/`` without ``Gecko/``).
- ``preview_fetcher``: a link-preview fetcher of a network we share to.
- ``known_crawler:<source>``: ``crawler-user-agents`` (PyPI), ``crawlerdetect`` (PyPI), ``isbot``
  (npm isbot's pattern, shipped in ``data/isbot.json``; chosen over Matomo device-detector's bot
  rules on measured recall and cost, figures in services/sharing/README.md).

The three databases are kept even where the browser test would catch the same string: their reason
names the fetcher, which is what an admin reading the reasons wants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import crawleruseragents  # type: ignore[import-untyped]
import regex  # type: ignore[import-untyped]
from crawlerdetect import CrawlerDetect

from advocacy_common.unused_imports import hidden

with hidden("yaml"):  # ua_parser's loader of a custom regexes.yaml: the built-in rules are precompiled
    from ua_parser import parse as parse_ua

# Link-preview fetchers (and unfurlers) that hit every shared link: not people.
PREVIEW_FETCHERS = re.compile(
    r"linkedinbot|slackbot|slack-imgproxy|twitterbot|facebookexternalhit|facebot|facebookcatalog"
    r"|meta-external|whatsapp/|telegrambot|discordbot|skypeuripreview|microsoft teams|msteams|teams-link-preview"
    r"|applebot|google-pagerenderer|googleother|google-inspectiontool|google-read-aloud|googlebot|storebot-google"
    r"|iframely|embedly|redditbot|pinterest|vkshare|bitlybot|mastodon/|bluesky|cardyb|xing-contenttabreceiver"
    r"|^snapchat|viber|line-poker|kakaotalk-scrap|zoominfobot|yahoo! slurp|bingpreview|outlook-iOS-linkpreview",
    re.IGNORECASE,
)

# -- evidence of a person ------------------------------------------------------------------------------
# A browser names its layout engine or itself with a product token. Modern ones (and every in-app
# webview: they are WebKit, Blink or Gecko) start with ``Mozilla/5.0 (`` and carry AppleWebKit/, Gecko/
# or Trident/; older and feature-phone browsers name themselves (Opera, NetFront, UP.Browser, Obigo...).
_ENGINE = re.compile(
    r"AppleWebKit/\d|Gecko/\d|\brv:\d|Trident/\d|MSIE \d|Presto/\d|Goanna/\d|\bKHTML\b|Opera[/ ]\d|Opera Mini"
    r"|NetFront|UP\.Browser|Obigo|Dolfin|Teleca|Polaris|MAUI|Series ?[46]0|SymbianOS|BlackBerry|BREW|Profile/MIDP"
    r"|UCWEB|UCBrowser|\bBrowser/|Konqueror|Links \(|Lynx/|w3m/|Dillo/|NetSurf|Chrome/\d|Chromium|Firefox/\d"
    r"|Safari/\d|Mobile Safari|Kindle/|Silk/|PlayStation|Nintendo|Puffin/|Maxthon|QtWebEngine|Arora/|Midori",
    re.IGNORECASE,
)
# Tokens a person's browser does not send: a contact URL or address (a fetcher introducing itself),
# ``compatible;`` without MSIE (the crawler convention ``Mozilla/5.0 (compatible; Name/1.0; +url)``),
# anything inside the KHTML comment (``(KHTML, like Gecko; Google-Assess)``), headless and automation
# engines, and the libraries a script fetches with.
_NOT_A_PERSON = re.compile(
    r"https?://|\bwww\.|\+https?|[\w.+-]+@[a-z][\w-]*\.[a-z]{2,}|\(KHTML, like Gecko;"
    r"|HeadlessChrome|PhantomJS|SlimerJS|Electron/0\.|Selenium|WebDriver|Puppeteer|Playwright|Lighthouse|PTST/|\bcurl/|\bwget|python-|\bokhttp/|Go-http-client"
    r"|\bjava/|libwww|\bhttpclient|axios/|node-fetch|undici",
    re.IGNORECASE,
)
_COMPATIBLE = re.compile(r"compatible;", re.IGNORECASE)
_MSIE_LIKE = re.compile(
    r"MSIE |Trident/|Konqueror|IEMobile|Opera|NetFront|Nokia|BlackBerry|Symbian|Series ?[46]0", re.I
)
_CHROME = re.compile(r"\bChrome/\d")
_FIREFOX = re.compile(r"\bFirefox/\d")
_WEBKIT = re.compile(r"AppleWebKit/")
_GECKO = re.compile(r"Gecko/|Goanna/|rv:\d")


def browser_evidence(user_agent: str) -> bool:
    """Whether the user agent parses as a real browser or in-app webview: an engine or browser
    product token, no token a browser never sends, and engine tokens consistent with the family."""
    ua = user_agent.strip()
    if not ua or not _ENGINE.search(ua) or _NOT_A_PERSON.search(ua):
        return False
    if _COMPATIBLE.search(ua) and not _MSIE_LIKE.search(ua):
        return False
    if _CHROME.search(ua) and not _WEBKIT.search(ua):
        return False
    return not (_FIREFOX.search(ua) and not _GECKO.search(ua) and "FxiOS" not in ua)


# -- bot databases ---------------------------------------------------------------------------------------
_detector = CrawlerDetect()
ISBOT_DATA_PATH = Path(__file__).parent / "data" / "isbot.json"
_ISBOT_DATA = json.loads(ISBOT_DATA_PATH.read_text())
ISBOT_VERSION: str = _ISBOT_DATA["version"]
# isbot's pattern is a JavaScript regular expression with variable-width look-behinds: the ``regex``
# module compiles it as written (the standard ``re`` refuses them).
_ISBOT = regex.compile(_ISBOT_DATA["pattern"], regex.IGNORECASE)


# The platform comment of an Android browser, ``Mozilla/5.0 (Linux; Android 7.0; M bot 54 Build/NRD90M)``,
# names the device as its maker chose (``M bot 54``, ``GM Discovery II``, ``VR BOT 552``) and its
# build (``Build/AP3A.240617.008``, a pattern of crawler-user-agents): the bot databases match words
# like those anywhere, so they read an Android agent without that comment. A crawler names itself
# after it, or inside ``(compatible; ...)``, which is not a platform comment. Other platforms' comments
# name no device and are kept (crawlers do hide there: ``(X11; Datanyze; Linux x86_64)``).
_PLATFORM_COMMENT = re.compile(r"^(Mozilla/5\.0 )\(Linux; (?:U; )?Android[^()]*\)")


def _without_platform(ua: str) -> str:
    return _PLATFORM_COMMENT.sub(r"\1", ua, count=1)


def _crawlerdetect(ua: str) -> bool:
    return bool(_detector.isCrawler(_without_platform(ua)))


def _crawler_user_agents(ua: str) -> bool:
    return bool(crawleruseragents.is_crawler(_without_platform(ua)))


def _isbot(ua: str) -> bool:
    return _ISBOT.search(_without_platform(ua)) is not None


# In-app browsers and desktop apps of the networks we share to: a person reading a post. Some bot
# databases list the apps' names (``Slack``) for their link fetchers; with evidence of a browser and
# the app's own webview token, the agent is the app's browser, not its fetcher (which the preview rule
# names first).
IN_APP = re.compile(
    r"\[LinkedInApp\]|\[FBAN/|\[FB_IAB/|\bFBAV/|\) Instagram \d|\bTwitterAndroid\b|Twitter for iP"
    r"|\bSlack_SSB/|\bSlack/\d|\bTeams/\d|\bTeamsMobile-"
)


def in_app_browser(user_agent: str) -> bool:
    return IN_APP.search(user_agent) is not None and browser_evidence(user_agent)


def _preview(ua: str) -> bool:
    return PREVIEW_FETCHERS.search(ua) is not None


def _not_browser(ua: str) -> bool:
    return not browser_evidence(ua)


# Every user-agent rule by the reason it gives, in the order they are tried (the first that applies
# names the verdict). Each is also measured on its own (tests/unit/test_verdict_corpora.py, bench).
UA_RULES: dict[str, Callable[[str], bool]] = {
    "preview_fetcher": _preview,
    "known_crawler:crawler-user-agents": _crawler_user_agents,
    "known_crawler:crawlerdetect": _crawlerdetect,
    "known_crawler:isbot": _isbot,
    "ua_not_browser": _not_browser,
}


@lru_cache(maxsize=65536)
def ua_reason(user_agent: str) -> str | None:
    """Why this user agent is not a person (a reason of :data:`UA_RULES`), or None: counted."""
    ua = user_agent.strip()
    if not ua:
        return "ua_not_browser"
    if _preview(ua):
        return "preview_fetcher"
    if in_app_browser(ua):
        return None
    for reason, applies in UA_RULES.items():
        if applies(ua):
            return reason
    return None


def is_bot(user_agent: str) -> bool:
    return ua_reason(user_agent) is not None


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
        ua_reason(ua)
        device_of(ua)


def mark_warm(user_agents: set[str]) -> None:
    """Remember them as classified (called on the event loop once ``warm`` has returned)."""
    if len(_WARM) + len(user_agents) > 65536:
        _WARM.clear()
    _WARM.update(user_agents)
