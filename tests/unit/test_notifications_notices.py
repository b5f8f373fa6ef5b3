"""Per-event notices' pure parts: what each category takes and what applies by default, when an
event is still news, the keys that make a notice once, and the notices' templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advocacy_notifications import domain
from advocacy_notifications.adapters import templates
from advocacy_notifications.domain import Category, Defaults, Frequency

pytestmark = pytest.mark.unit

NOTICES = (
    "suggestion_approved",
    "suggestion_rejected",
    "coaching_replied",
    "badge_earned",
    "challenge_started",
    "challenge_ended",
    "challenge_won",
    "reward_fulfilled",
)
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_the_digest_is_daily_or_weekly_every_other_category_on_or_off() -> None:
    assert domain.frequencies(Category.digest) == (Frequency.daily, Frequency.weekly, Frequency.off)
    for c in (Category.suggestions, Category.coaching, Category.badges, Category.challenges, Category.rewards):
        assert domain.frequencies(c) == (Frequency.on, Frequency.off)


def test_a_choice_wins_then_the_tenants_default_then_on() -> None:
    d = Defaults(digest_frequency=Frequency.daily)
    assert domain.frequency_of(Category.badges, None, None, d) is Frequency.on
    assert domain.frequency_of(Category.badges, None, Frequency.off, d) is Frequency.off
    assert domain.frequency_of(Category.badges, Frequency.on, Frequency.off, d) is Frequency.on
    assert domain.frequency_of(Category.badges, Frequency.off, None, d) is Frequency.off
    # the digest's default is the tenant's digest frequency, not a category default
    assert domain.frequency_of(Category.digest, None, Frequency.off, d) is Frequency.daily


def test_an_event_is_news_for_two_days() -> None:
    assert domain.is_news(NOW - domain.NOTICE_WITHIN, NOW)
    assert not domain.is_news(NOW - domain.NOTICE_WITHIN - timedelta(seconds=1), NOW)
    assert domain.is_news(NOW + timedelta(seconds=5), NOW)  # a producer's clock a little ahead


def test_keys_make_a_notice_once_and_a_winner_gets_no_ended_notice() -> None:
    assert domain.notice_key("e1", "ann") == domain.notice_key("e1", "ann") != domain.notice_key("e2", "ann")
    assert domain.notice_key("e1", "ann") != domain.notice_key("e1", "bob")
    # "you won" and "it ended" share the person's end key: whichever comes first is the only one
    assert domain.challenge_key("end", "c", "ann") != domain.challenge_key("start", "c", "ann")
    assert domain.challenge_key("end", "c", "ann") != domain.challenge_key("end", "c2", "ann")


def test_a_start_is_announced_while_the_challenge_runs() -> None:
    start, end = NOW, NOW + timedelta(days=1)
    assert not domain.announce_start(start, end, NOW - timedelta(seconds=1))
    assert domain.announce_start(start, end, NOW)
    assert not domain.announce_start(start, end, end)


def test_a_badge_reads_as_words_and_is_bounded() -> None:
    assert domain.badge_title("ten_shares") == "Ten shares"
    assert domain.badge_title("first-share") == "First share"
    assert len(domain.badge_title("x" * 10_000)) == 100


@pytest.mark.parametrize("name", NOTICES)
def test_every_notice_renders_its_three_parts_escaped_in_html(name: str) -> None:
    context = {
        "name": "Ann <Admin>",
        "unsubscribe_url": "https://n.example/u?token=a&b",
        "title": "Q&A <live>",
        "reason": "Not <our> tone",
        "badge": "Ten shares",
        "challenge": "Spring <sprint>",
        "ends_at": NOW,
        "goal_kind": "top_n",
        "rank": 1,
        "points": 1234,
        "team": None,
        "reward": "A mug & a pen",
    }
    out = templates.render(name, context)
    assert out.subject and "\n" not in out.subject
    assert "Hello Ann <Admin>," in out.text and "https://n.example/u?token=a&b" in out.text
    assert "Ann &lt;Admin&gt;" in out.html and "<Admin>" not in out.html
    assert 'href="https://n.example/u?token=a&amp;b"' in out.html


def test_a_team_win_names_the_team() -> None:
    base = {"name": None, "unsubscribe_url": "u", "challenge": "Spring", "rank": 1, "points": 30}
    assert templates.render("challenge_won", {**base, "team": "blue"}).subject == "Your team won: Spring"
    assert templates.render("challenge_won", {**base, "team": None}).subject == "You won: Spring"


@pytest.mark.parametrize("name", NOTICES)
def test_every_notice_can_be_reworded_by_a_tenant_with_its_variables(name: str) -> None:
    """Each notice is a TemplateName with a sample context that renders its built-in parts: an
    override is checked against exactly these variables (adapters/overrides.py)."""
    from advocacy_notifications.adapters import overrides

    assert domain.TemplateName(name).value == name
    ctx = templates.sample(name)
    out = templates.render(name, ctx)
    assert out.subject and out.text and out.html
    # the built-in wording itself passes as an override: the sample has every variable it reads
    folder = Path(templates.__file__).parent / "templates"
    parts = {"subject": "subject.j2", "text": "txt.j2", "html": "html.j2"}
    overrides.validate({part: (folder / f"{name}.{suffix}").read_text() for part, suffix in parts.items()}, ctx)
