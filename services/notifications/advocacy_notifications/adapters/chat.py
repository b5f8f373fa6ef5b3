"""Payloads for the tenant's team channels: Slack Block Kit and a Microsoft Teams Adaptive Card in
the Workflows envelope. Pure: text in, JSON-ready dicts out.

A message is a line of segments, each plain or bold. Every segment's text comes from people (a
display name, a badge name an admin chose), so each is escaped for the receiver's markup:

- Slack ``mrkdwn`` (and the top-level ``text`` fallback, which notifications show): ``&``, ``<`` and
  ``>`` become entities, as Slack asks, so a name cannot be a link, an ``<!channel>`` or an
  ``<@U123>`` mention. Formatting characters (``*_~```) cannot be escaped in mrkdwn: a segment is
  bolded by wrapping it, and a name with a ``*`` of its own can at worst end the bold early.
- Adaptive Card ``TextBlock`` markdown (CommonMark's inline subset: emphasis, links, lists): every
  ASCII punctuation character is backslash-escaped (CommonMark allows it for all of them), so a
  name renders as written, never as a link or a list. Line breaks become spaces (a line starting
  with ``-`` is a list) and control characters are dropped, for both receivers.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence
from typing import Any

from advocacy_notifications.adapters import templates
from advocacy_notifications.domain import CHAT_TEXT_MAX, ChatChannel

Segment = tuple[str, bool]
"""(text, bold)"""

_MD_SPECIAL = frozenset(string.punctuation)
_SPACES = re.compile(r"\s+")
_ADAPTIVE_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
_ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def clean(text: str) -> str:
    """One line: control characters dropped, runs of whitespace (line breaks too) one space (kept
    at the ends: segments are joined), at most :data:`CHAT_TEXT_MAX` characters."""
    kept = "".join(" " if c.isspace() else c for c in text if c.isspace() or unicodedata.category(c)[0] != "C")
    line = _SPACES.sub(" ", kept)
    return line if len(line) <= CHAT_TEXT_MAX else line[: CHAT_TEXT_MAX - 1] + "…"


def slack_escape(text: str) -> str:
    return _slack(clean(text))


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_escape(text: str) -> str:
    return _markdown(clean(text))


def _markdown(text: str) -> str:
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def _bold(text: str) -> str | None:
    """A bold segment's text: cleaned and trimmed (``* x *`` is not bold in either markup)."""
    return clean(text).strip() or None


def slack(segments: Sequence[Segment], *, emoji: str = "") -> dict[str, Any]:
    """Block Kit: one ``section`` in mrkdwn, and ``text`` as the notification's fallback."""
    fallback = "".join(slack_escape(t) for t, _ in segments)
    rich = "".join(f"*{_slack(b)}*" if bold and (b := _bold(t)) else slack_escape(t) for t, bold in segments)
    lead = f"{emoji} " if emoji else ""
    return {
        "text": fallback,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": lead + rich}}],
    }


def teams(segments: Sequence[Segment], *, emoji: str = "") -> dict[str, Any]:
    """The Teams Workflows envelope (``type: message``) around an Adaptive Card 1.4 with one
    wrapping ``TextBlock``."""
    text = "".join(f"**{_markdown(b)}**" if bold and (b := _bold(t)) else markdown_escape(t) for t, bold in segments)
    card = {
        "type": "AdaptiveCard",
        "$schema": _ADAPTIVE_SCHEMA,
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": (f"{emoji} " if emoji else "") + text, "wrap": True}],
    }
    return {"type": "message", "attachments": [{"contentType": _ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def payload(channel: ChatChannel, segments: Sequence[Segment], *, emoji: str = "") -> dict[str, Any]:
    return slack(segments, emoji=emoji) if channel is ChatChannel.slack else teams(segments, emoji=emoji)


def badge_label(badge: str) -> str:
    """A badge's id as people read it: ``first_share`` -> ``First share``."""
    words = clean(badge.replace("_", " ").replace("-", " ")).strip()
    return words[:1].upper() + words[1:]


def badge_segments(name: str | None, badge: str, locale: str = templates.DEFAULT_LOCALE) -> list[Segment]:
    """ "<Name> earned the <Badge> badge." in ``locale`` (``chat_badge.line.j2``; ``name`` None: "A
    colleague", the person anonymous)."""
    who = name if name and clean(name).strip() else None
    title = templates.words("badge_title", {"key": badge, "fallback": badge_label(badge)}, locale)
    return templates.render_line("chat_badge", {"name": who, "badge": title}, locale)
