"""Properties of the policy matcher and the length counter (hypothesis)."""

from __future__ import annotations

import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from advocacy_common.networks import RULES, Network, text_length
from advocacy_common.policy import (
    BLOCKED_TERM,
    TOO_LONG,
    Policy,
    check_message,
    domain_allowed,
    find_blocked_terms,
    message_length,
    normalize,
    term_words,
)

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u202a"]
# letter -> disguises a person would use for it
DISGUISES = {
    "a": ["4", "@", "A", "\uff41", "\u0430", "á"],
    "e": ["3", "E", "\uff45", "\u0435", "é", "€"],
    "i": ["1", "!", "|", "I", "\uff49", "í", "\u0456"],
    "l": ["1", "|", "L", "\uff4c"],
    "o": ["0", "O", "\uff4f", "\u043e", "ö", "\u03bf"],
    "s": ["5", "$", "S", "\uff53", "\u0455"],
    "t": ["7", "T", "\uff54", "+"],
    "c": ["C", "\uff43", "\u0441", "ç"],
    "n": ["N", "\uff4e", "ñ"],
    "d": ["D", "\uff44"],
    "r": ["R", "\uff52"],
    "p": ["P", "\uff50", "\u0440"],
}
LETTERS = "aeilostcndrp"

word = st.text(alphabet=LETTERS, min_size=3, max_size=10)
terms = st.lists(word, min_size=1, max_size=3).map(" ".join)
filler = st.lists(st.text(alphabet="bfghjkmquvwxyz ", min_size=1, max_size=8), max_size=5).map(" ".join)


@st.composite
def disguised(draw: st.DrawFn, term: str) -> str:
    """The term with look-alike substitutions, case changes and zero-width characters inside."""
    out: list[str] = []
    for i, ch in enumerate(term):
        if ch == " ":
            out.append(draw(st.sampled_from([" ", "-", "_", "  ", "\n", ". "])))
            continue
        choices = [ch, *DISGUISES.get(ch, [])]
        out.append(draw(st.sampled_from(choices)))
        if 0 < i < len(term) - 1 and draw(st.booleans()):
            out.append(draw(st.sampled_from(ZERO_WIDTH)))
    return "".join(out)


@settings(max_examples=300)
@given(data=st.data(), term=terms, before=filler, after=filler)
def test_a_disguised_term_still_matches_and_the_span_covers_it(
    data: st.DataObject, term: str, before: str, after: str
) -> None:
    hidden = data.draw(disguised(term))
    prefix = f"{before} " if before else ""
    text = f"{prefix}{hidden} {after}"
    found = find_blocked_terms((term,), text)
    spans = [v.span for v in found]
    assert (len(prefix), len(prefix) + len(hidden)) in spans, (text, spans)


@settings(max_examples=300)
@given(text=st.text(max_size=200), blocked=st.lists(terms, min_size=1, max_size=4))
def test_spans_index_the_original_text_and_hold_the_term(text: str, blocked: list[str]) -> None:
    for v in find_blocked_terms(tuple(blocked), text):
        start, end = v.span
        assert 0 <= start < end <= len(text)
        # the covered characters alone still contain a blocked term, starting at their first character
        again = find_blocked_terms(tuple(blocked), text[start:end])
        assert any(s == 0 for s, _ in (w.span for w in again)), (text, v)


@settings(max_examples=300)
@given(text=st.text(max_size=200), term=terms)
def test_text_without_the_term_never_yields_blocked_term(text: str, term: str) -> None:
    normalized, _ = normalize(text)
    assume(term_words(term)[0] not in normalized)
    assert find_blocked_terms((term,), text) == []


@given(text=st.text(alphabet="bfghjkmquvwxyz .,;:-?()\n", max_size=300), blocked=st.lists(terms, min_size=1))
def test_text_from_other_letters_is_clean(text: str, blocked: list[str]) -> None:
    violations = check_message(Policy(blocked_terms=tuple(blocked)), Network.facebook, text)
    assert [v for v in violations if v.rule == BLOCKED_TERM] == []


@given(text=st.text(max_size=300))
def test_normalize_index_is_monotonic_and_in_range(text: str) -> None:
    normalized, index = normalize(text)
    assert len(normalized) == len(index)
    assert all(0 <= i < len(text) for i in index)
    assert index == sorted(index)


# -- length -----------------------------------------------------------------------------------------
url = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}.com/{path}",
    st.sampled_from(["http", "https", "HTTPS"]),
    st.text(alphabet="abcdefghij", min_size=1, max_size=20),
    st.text(alphabet="abc123/?=&-", max_size=80),
)
plain = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), max_size=40)


@given(parts=st.lists(st.one_of(plain, url), max_size=8))
def test_x_counts_every_link_as_23_and_other_networks_count_code_points(parts: list[str]) -> None:
    text = " ".join(parts)
    links = re.findall(r"https?://\S+", text, re.IGNORECASE)
    assert text_length(Network.x, text) == len(text) - sum(len(u) for u in links) + 23 * len(links)
    for network in (Network.linkedin, Network.bluesky, Network.email):
        assert text_length(network, text) == len(text)


@given(
    parts=st.lists(st.one_of(plain, url), max_size=12),
    network=st.sampled_from(list(Network)),
    tenant_limit=st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
    link=st.one_of(st.none(), url),
)
def test_too_long_iff_over_the_effective_limit_and_the_span_starts_where_it_stops_fitting(
    parts: list[str], network: Network, tenant_limit: int | None, link: str | None
) -> None:
    text = " ".join(parts)
    policy = Policy(max_lengths={} if tenant_limit is None else {str(network): tenant_limit})
    limit = min(RULES[network].max_length, tenant_limit if tenant_limit is not None else 10**9)
    found = [v for v in check_message(policy, network, text, link=link) if v.rule == TOO_LONG]
    assert bool(found) == (message_length(network, text, link) > limit)
    if found:
        start, end = found[0].span
        assert end == len(text)
        assert start == len(text) or message_length(network, text[: start + 1], link) > limit
        assert start == 0 or message_length(network, text[:start], link) <= limit


@given(
    labels=st.lists(st.text(alphabet="abcxyz0-", min_size=1, max_size=8), min_size=0, max_size=3),
    allowed=st.text(alphabet="abcxyz", min_size=1, max_size=8),
)
def test_subdomains_of_an_allowed_domain_are_allowed_lookalike_suffixes_are_not(
    labels: list[str], allowed: str
) -> None:
    domain = f"{allowed}.com"
    host = ".".join([*labels, domain])
    assert domain_allowed(host, (domain,))
    assert not domain_allowed(f"x{domain}", (domain,))
    assert not domain_allowed(f"{domain}.evil.io", (domain,))
