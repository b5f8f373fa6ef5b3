"""The social networks: one enum with each network's length limit and share-intent support.

Content (captions) and sharing (messages, intent URLs) both judge text with these rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlencode


class Network(StrEnum):
    linkedin = "linkedin"
    x = "x"
    facebook = "facebook"
    xing = "xing"
    instagram = "instagram"
    threads = "threads"
    bluesky = "bluesky"
    whatsapp = "whatsapp"
    telegram = "telegram"
    reddit = "reddit"
    email = "email"


@dataclass(frozen=True, slots=True)
class NetworkRules:
    max_length: int
    has_intent: bool
    # X shortens every link to a t.co URL of fixed length, whatever the original length.
    link_length: int | None = None


RULES: dict[Network, NetworkRules] = {
    Network.linkedin: NetworkRules(3000, True),
    Network.x: NetworkRules(280, True, link_length=23),
    Network.facebook: NetworkRules(63206, True),
    Network.xing: NetworkRules(3000, True),
    Network.instagram: NetworkRules(2200, False),
    Network.threads: NetworkRules(500, True),
    Network.bluesky: NetworkRules(300, True),
    Network.whatsapp: NetworkRules(65536, True),
    Network.telegram: NetworkRules(4096, True),
    Network.reddit: NetworkRules(40000, True),
    Network.email: NetworkRules(100000, True),
}

#: How a person reads each network's name (buttons, pages).
NAMES: dict[Network, str] = {
    Network.linkedin: "LinkedIn",
    Network.x: "X",
    Network.facebook: "Facebook",
    Network.xing: "XING",
    Network.instagram: "Instagram",
    Network.threads: "Threads",
    Network.bluesky: "Bluesky",
    Network.whatsapp: "WhatsApp",
    Network.telegram: "Telegram",
    Network.reddit: "Reddit",
    Network.email: "Email",
}

_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)


def text_length(network: Network, text: str) -> int:
    """Length of ``text`` as the network counts it (code points; X counts each link as 23)."""
    rules = RULES[network]
    if rules.link_length is None:
        return len(text)
    total = len(text)
    for m in _URL.finditer(text):
        total += rules.link_length - len(m.group(0))
    return total


def over_limit(network: Network, text: str, extra_link: str | None = None) -> int:
    """How many characters ``text`` (plus the tracked link, if it will be appended) is over the limit."""
    full = f"{text} {extra_link}" if extra_link else text
    return max(0, text_length(network, full) - RULES[network].max_length)


def intent_url(network: Network, link: str, message: str | None, title: str | None = None) -> str | None:
    """The URL that opens the network's share dialog with the message and link filled in."""
    msg = message or ""
    if network is Network.linkedin:
        return "https://www.linkedin.com/feed/?" + urlencode({"shareActive": "true", "text": f"{msg} {link}".strip()})
    if network is Network.x:
        return "https://x.com/intent/post?" + urlencode({"text": msg, "url": link})
    if network is Network.facebook:
        return "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": link, "quote": msg})
    if network is Network.xing:
        return "https://www.xing.com/spi/shares/new?" + urlencode({"url": link, "follow_url": link})
    if network is Network.threads:
        return "https://www.threads.net/intent/post?" + urlencode({"text": f"{msg} {link}".strip()})
    if network is Network.bluesky:
        return "https://bsky.app/intent/compose?" + urlencode({"text": f"{msg} {link}".strip()})
    if network is Network.whatsapp:
        return "https://wa.me/?" + urlencode({"text": f"{msg} {link}".strip()})
    if network is Network.telegram:
        return "https://t.me/share/url?" + urlencode({"url": link, "text": msg})
    if network is Network.reddit:
        return "https://www.reddit.com/submit?" + urlencode({"url": link, "title": title or msg})
    if network is Network.email:
        subject = quote(title or "Worth a read")
        body = quote(f"{msg}\n\n{link}".strip())
        return f"mailto:?subject={subject}&body={body}"
    return None
