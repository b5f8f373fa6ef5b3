"""Team channels, the pure parts: Slack Block Kit and Teams Adaptive Card payloads (escaping what
people wrote), masking a stored webhook URL, who is announced, what is retried."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from advocacy_notifications.adapters import chat
from advocacy_notifications.domain import (
    CHAT_TEXT_MAX,
    Announce,
    ChatChannel,
    announce,
    badge_key,
    chat_retryable,
    mask_url,
    worth_announcing,
)

HOSTILE = (
    "<!channel> *Ann* & <@U123|boss> [click](https://evil.example) _x_ `y` # h\n- item {{DATE(2026-01-01T00:00:00Z)}}"
)


def _slack_text(name: str) -> tuple[str, str]:
    p = chat.slack(chat.badge_segments(name, "first_share"))
    return p["text"], p["blocks"][0]["text"]["text"]


def test_slack_payload_is_block_kit_with_a_fallback() -> None:
    p = chat.slack(chat.badge_segments("Ann Lee", "first_share"), emoji="🏅")
    assert p == {
        "text": "Ann Lee earned the First share badge.",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "🏅 *Ann Lee* earned the *First share* badge."}}
        ],
    }


def test_slack_escapes_ampersand_and_angle_brackets_so_no_mention_or_link_survives() -> None:
    fallback, rich = _slack_text(HOSTILE)
    for text in (fallback, rich):
        # Slack parses <...> as links and mentions: none may be left, and & only as an entity
        assert "<" not in text and ">" not in text
        assert re.sub(r"&(amp|lt|gt);", "", text).count("&") == 0
        assert "&lt;!channel&gt;" in text and "&lt;@U123|boss&gt;" in text
        assert "\n" not in text  # one line: a newline cannot start a list or a quote
    # what Slack shows once it decodes the three entities is what the person wrote (on one line)
    assert html.unescape(fallback).startswith("<!channel> *Ann* & <@U123|boss>")


def _rendered_text(markdown: str) -> str:
    """What a CommonMark renderer shows of a TextBlock's text, tags removed."""
    out = MarkdownIt("commonmark").render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", out)).strip()


def _inline_tags(markdown: str) -> set[str]:
    return set(re.findall(r"<(\w+)", MarkdownIt("commonmark").render(markdown)))


def test_teams_payload_is_an_adaptive_card_in_the_workflows_envelope() -> None:
    p = chat.teams(chat.badge_segments("Ann Lee", "first_share"), emoji="🏅")
    assert p["type"] == "message"
    (attachment,) = p["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    (block,) = card["body"]
    assert block == {"type": "TextBlock", "text": "🏅 **Ann Lee** earned the **First share** badge\\.", "wrap": True}


def test_teams_escapes_markdown_so_a_name_renders_as_written() -> None:
    text = chat.teams(chat.badge_segments(HOSTILE, "x"))["attachments"][0]["content"]["body"][0]["text"]
    # only our bold: no link, list, heading, code or emphasis of theirs
    assert _inline_tags(text) == {"p", "strong"}
    shown = _rendered_text(text)
    assert shown == f"{chat.clean(HOSTILE).strip()} earned the X badge."


@given(st.text(max_size=300))
def test_any_name_renders_literally_in_teams_and_is_entity_safe_in_slack(name: str) -> None:
    md = chat.markdown_escape(name)
    assert _inline_tags(md) <= {"p"}
    assert _rendered_text(md) == chat.clean(name).strip()
    s = chat.slack_escape(name)
    assert "<" not in s and ">" not in s and html.unescape(s) == chat.clean(name)


def test_clean_bounds_and_flattens() -> None:
    assert chat.clean("a\r\n\tb\x00c\u202e") == "a bc"
    long = chat.clean("x" * 10_000)
    assert len(long) == CHAT_TEXT_MAX and long.endswith("…")


def test_an_anonymous_person_is_a_colleague() -> None:
    assert chat.badge_segments(None, "b")[0] == ("A colleague earned the ", False)
    assert chat.badge_segments("   ", "b")[0] == ("A colleague earned the ", False)


def test_the_channel_is_written_in_the_tenants_language_with_names_set_apart() -> None:
    # the name and the badge stay segments of their own (escaped by the receiver's rules), the
    # words around them are German; a known badge has a German title, another keeps its own
    assert chat.badge_segments("Ann {{ 7*7 }}", "first_share", "de") == [
        ("Ann {{ 7*7 }}", True),
        (" hat das Abzeichen ", False),
        ("Erster geteilter Beitrag", True),
        (" erhalten.", False),
    ]
    assert chat.slack(chat.badge_segments(None, "spring_hero", "de"))["text"] == (
        "Eine Kollegin oder ein Kollege hat das Abzeichen Spring hero erhalten."
    )


def test_a_stored_url_is_shown_masked() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXsecret1234"
    shown = mask_url(url)
    assert shown == "https://hooks.slack.com/…1234"
    assert "secret" not in shown and "T000" not in shown
    # a short path is not shown at all: its last characters would be most of the secret
    assert mask_url("https://example.com/abcd1234") == "https://example.com/…"
    assert mask_url("https://example.com") == "https://example.com/…"


@pytest.mark.parametrize(
    ("known", "enrolled", "active", "leaderboard", "expected"),
    [
        (True, True, True, "ranked", Announce.named),
        (True, True, True, "anonymous", Announce.anonymous),
        (True, True, True, "hidden", Announce.not_at_all),
        (True, False, True, "ranked", Announce.not_at_all),
        (True, True, False, "ranked", Announce.not_at_all),
        (False, False, False, "ranked", Announce.anonymous),
    ],
)
def test_who_is_announced(known: bool, enrolled: bool, active: bool, leaderboard: str, expected: Announce) -> None:
    assert announce(known=known, enrolled=enrolled, active=active, leaderboard=leaderboard) is expected


@pytest.mark.parametrize(
    ("status", "retried"),
    [(None, True), (429, True), (500, True), (503, True), (400, False), (403, False), (404, False), (410, False)],
)
def test_what_is_retried(status: int | None, retried: bool) -> None:
    assert chat_retryable(status) is retried


def test_only_recent_badges_are_news_and_each_has_one_key_per_channel() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert worth_announcing(now - timedelta(hours=23), now)
    assert not worth_announcing(now - timedelta(days=2), now)
    assert badge_key("e1", "b", ChatChannel.slack) != badge_key("e1", "b", ChatChannel.teams)
