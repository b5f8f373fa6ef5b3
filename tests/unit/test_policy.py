"""The shared policy matcher: examples for each rule (properties are in test_policy_properties.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from advocacy_common.events.content import PolicyUpdated
from advocacy_common.networks import Network
from advocacy_common.policy import (
    BLOCKED_TERM,
    DOMAIN_NOT_ALLOWED,
    MISSING_DISCLOSURE,
    TOO_LONG,
    Policy,
    check_message,
    normalize,
)

POLICY = Policy(
    version=3,
    blocked_terms=("confidential", "project x", "attention"),
    required_disclosures={"x": "#employee"},
    allowed_domains=("example.com",),
    max_lengths={"linkedin": 50},
)


def rules(text: str, network: Network = Network.linkedin, **kw: str) -> list[tuple[str, tuple[int, int]]]:
    return [(v.rule, v.span) for v in check_message(POLICY, network, text, **kw)]


@pytest.mark.parametrize(
    ("disguise", "covered"),
    [
        ("confidential", "confidential"),
        ("C0nfidential", "C0nfidential"),
        ("c\u200bonfidential", "c\u200bonfidential"),
        ("c\u200c\u200d\u2060\ufeff\u00adonfidential", "c\u200c\u200d\u2060\ufeff\u00adonfidential"),
        ("\uff23\uff2f\uff2e\uff26\uff29\uff24\uff25\uff2e\uff34\uff29\uff21\uff2c", None),  # full width
        ("CONFIDENTIAL", "CONFIDENTIAL"),
        ("co\u0308nfi\u0301dential", "co\u0308nfi\u0301dential"),  # combining accents
        ("cönfïdéntial", "cönfïdéntial"),
        ("c0nf1d3nt14l", "c0nf1d3nt14l"),
        ("conf!dent!a|", "conf!dent!a|"),
        ("\u0441onfidential", "\u0441onfidential"),  # Cyrillic es
        ("Confidential!", "Confidential"),
        ("'confidential'.", "confidential"),
        ("#confidential", "confidential"),
    ],
)
def test_blocked_term_disguises_are_caught_and_the_span_points_at_the_original(
    disguise: str, covered: str | None
) -> None:
    text = f"This is {disguise} today"
    found = rules(text)
    assert len(found) == 1 and found[0][0] == BLOCKED_TERM, found
    start, end = found[0][1]
    assert text[start:end] == (covered or disguise)


def test_blocked_terms_are_words_not_substrings() -> None:
    assert rules("Confidentiality matters") == []
    assert rules("unconfidential") == []
    assert rules("a project xylophone") == []


def test_multi_word_terms_match_across_any_separator() -> None:
    for text in ("about Project X now", "about project-x now", "about PROJECT\n\tX now", "about pr0ject_x now"):
        assert [r for r, _ in rules(text)] == [BLOCKED_TERM], text
    text = "about Project  X now"
    assert rules(text) == [(BLOCKED_TERM, (6, 16))]
    assert text[6:16] == "Project  X"


def test_symbol_at_a_word_edge_reads_as_letter_or_punctuation() -> None:
    assert rules("@ttention please") == [(BLOCKED_TERM, (0, 9))]
    assert rules("your attention!") == [(BLOCKED_TERM, (5, 14))]


def test_every_occurrence_is_reported() -> None:
    text = "confidential and C0NFIDENTIAL"
    assert rules(text) == [(BLOCKED_TERM, (0, 12)), (BLOCKED_TERM, (17, 29))]


def test_required_disclosure_per_network() -> None:
    assert rules("hello", Network.x) == [(MISSING_DISCLOSURE, (5, 5))]
    assert rules("hello #employee", Network.x) == []
    assert rules("hello #EMPLOYEE!", Network.x) == []
    assert rules("hello #employees", Network.x) == [(MISSING_DISCLOSURE, (16, 16))]
    assert rules("hello", Network.linkedin) == []  # no disclosure required there


def test_links_outside_the_allowed_domains() -> None:
    text = "read https://example.com/a, https://blog.example.com/b and https://evil.com/c."
    found = check_message(POLICY, Network.facebook, text)
    assert [(v.rule, text[v.span[0] : v.span[1]]) for v in found] == [(DOMAIN_NOT_ALLOWED, "https://evil.com/c")]
    assert rules("see www.notexample.com today") == [(DOMAIN_NOT_ALLOWED, (4, 22))]
    assert rules("see https://example.com.evil.io/x") == [(DOMAIN_NOT_ALLOWED, (4, 33))]
    assert check_message(Policy(), Network.linkedin, "https://anything.io") == []


def test_length_uses_the_network_limit_and_the_tenants_stricter_one() -> None:
    assert rules("a" * 50) == []
    assert rules("a" * 51) == [(TOO_LONG, (50, 51))]
    # the tracked link is appended after a space
    assert rules("a" * 30, link="https://s.io/r/abcdef") == [(TOO_LONG, (28, 30))]
    # X counts any link as 23
    x = Policy(required_disclosures={})
    text = "b" * 250 + " https://example.com/" + "p" * 100
    assert check_message(x, Network.x, text) == []
    assert [v.rule for v in check_message(x, Network.x, "b" * 257, link="https://s.io/r/" + "c" * 60)] == [TOO_LONG]
    # a tenant limit never raises the network's own
    loose = Policy(max_lengths={"x": 10_000})
    assert [v.rule for v in check_message(loose, Network.x, "c" * 281)] == [TOO_LONG]


def test_normalize_keeps_an_index_into_the_original() -> None:
    text = "Ｈé\u200bl1o ﬁne"
    normalized, index = normalize(text)
    assert normalized == "heiio fine"
    assert index == [0, 1, 3, 4, 5, 6, 7, 7, 8, 9]


def test_from_event() -> None:
    e = PolicyUpdated(
        version=7,
        blocked_terms=["a b"],
        required_disclosures={"x": "#ad"},
        allowed_domains=["example.com"],
        max_lengths={"x": 100},
        updated_by="admin",
        updated_at=datetime.now(UTC),
    )
    p = Policy.from_event(e)
    assert p.version == 7 and p.blocked_terms == ("a b",) and p.required_disclosures["x"] == "#ad"
    assert p.limit_for(Network.x) == 100 and p.limit_for(Network.linkedin) == 3000
