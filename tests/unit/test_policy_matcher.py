"""The trie matcher against the matcher it replaced (``policy_reference``): the same violations for
every term list and text (hypothesis, adversarial shapes included), and work per token that does not
grow with the number of terms (counted in trie steps, never timed)."""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from advocacy_common.networks import Network
from advocacy_common.policy import (
    MATCHERS,
    MAX_TERM_WORDS,
    STEPS_BASE,
    STEPS_PER_TOKEN,
    UNCHECKED,
    Matcher,
    MatchStats,
    Policy,
    _allowed_set,
    _host_allowed,
    check_message,
    domain_allowed,
    find_blocked_terms,
    terms_digest,
)
from tests.support import policy_reference as reference

# A small alphabet so words collide, share prefixes and overlap; symbols that read as letters at a
# word's edges ("!nternal", "confidential!"); look-alikes (digits, Cyrillic, full width, accents).
CORE = "aisnt"
LOOKS = ["1", "l", "|", "!", "@", "4", "$", "5", "+", "7", "\u0430", "\u0455", "\uff41", "\u00e1", "I", "S"]
SEPARATORS = [" ", "  ", "-", "_", ". ", "\n", ", ", "!", "$ ", "\u200b", " | ", "@"]

core_word = st.text(alphabet=CORE, min_size=1, max_size=3)


@st.composite
def disguised_word(draw: st.DrawFn) -> str:
    w = draw(core_word)
    out = "".join(draw(st.sampled_from([ch, ch, *LOOKS])) if draw(st.booleans()) else ch for ch in w)
    lead = draw(st.sampled_from(["", "", "!", "$", "@", "|", "+"]))
    trail = draw(st.sampled_from(["", "", "!", "$", "@", "|", "+", "!!"]))
    return lead + out + trail


@st.composite
def case(draw: st.DrawFn) -> tuple[tuple[str, ...], str]:
    pool = draw(st.lists(disguised_word(), min_size=1, max_size=6))
    word = st.sampled_from(pool)
    term = st.lists(word, min_size=1, max_size=4).map(" ".join)
    terms = draw(st.lists(term | disguised_word(), min_size=1, max_size=12))
    if draw(st.booleans()):  # several terms sharing a first word
        head = draw(word)
        terms += [f"{head} {t}" for t in draw(st.lists(term, max_size=6))]
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 40))):
        parts.append(draw(word | disguised_word()))
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return tuple(terms), "".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case())
@example((("a b", "b c", "a b c", "b"), "a b c b c a b"))  # overlapping terms: one per start
@example((("!nternal", "internal", "nternal"), "!nternal! internal|"))  # symbols: letter or punctuation
@example((("ass",), "class assess a$$ @ss"))  # word boundaries
@example((("Sale", "sale", "sale now"), "$ALE n0w sale"))  # same words twice, the earlier term wins
@example((("a", "ia", "ai", "iai", "a ia", "iai a"), "!a! !a! !a!"))  # many readings per token
@example((("a ix z", "a x z"), "a !x z"))  # two paths as long: the earlier term, though found second
def test_the_trie_reports_what_the_old_matcher_reported(c: tuple[tuple[str, ...], str]) -> None:
    terms, text = c
    assert find_blocked_terms(terms, text) == reference.find_blocked_terms(terms, text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8), st.text(max_size=300))
def test_any_unicode_gives_the_same_violations(terms: list[str], text: str) -> None:
    assert find_blocked_terms(tuple(terms), text) == reference.find_blocked_terms(tuple(terms), text)


def _shared_first_word_terms(n: int, rng: random.Random) -> tuple[str, ...]:
    """The policy of issue 12: every term starts with the same word."""
    return tuple(f"acme {rng.choice('bcdfg')}{rng.randrange(10**6)} {rng.randrange(10**3)}" for _ in range(n))


def _long_message(rng: random.Random, chars: int = 4000) -> str:
    words = ["acme", "Acme!", "@cme", "b12", "launch", "c7", "news", "$acme$", "d3 4"]
    out: list[str] = []
    while sum(map(len, out)) < chars:
        out.append(rng.choice(words))
    return " ".join(out)[:chars]


def test_adversarial_lists_and_long_texts_agree() -> None:
    rng = random.Random(12)
    terms = _shared_first_word_terms(2000, rng)
    text = _long_message(rng) + " acme " + terms[-1].split(" ", 1)[1] + " acme"
    new = find_blocked_terms(terms, text)
    assert new == reference.find_blocked_terms(terms, text)
    assert [v.span for v in new][-1:] == [(len(text) - 5 - len(terms[-1]), len(text) - 5)]
    # every prefix of a long term is a term too: the longest wins at every token
    chain = tuple(" ".join(["go"] * k) for k in range(1, MAX_TERM_WORDS + 1))
    text = " ".join(["go", "g0!", "|go"] * 300)
    assert find_blocked_terms(chain, text) == reference.find_blocked_terms(chain, text)


def test_work_per_token_stays_flat_at_ten_times_the_terms() -> None:
    rng = random.Random(7)
    text = _long_message(rng)
    small, large = MatchStats(), MatchStats()
    Matcher(_shared_first_word_terms(200, rng)).find(text, small)
    Matcher(_shared_first_word_terms(2000, rng)).find(text, large)
    assert small.tokens == large.tokens > 500
    assert large.steps == small.steps  # the same trie steps: only the text decides them
    assert large.steps <= 4 * large.tokens  # a step or two per reading, never one per term

    # unrelated terms: one look-up per reading, whatever their number
    words = [f"w{rng.randrange(10**9)}" for _ in range(20_000)]
    small, large = MatchStats(), MatchStats()
    Matcher(tuple(words[:2000])).find(text, small)
    Matcher(tuple(words)).find(text, large)
    assert large.steps == small.steps <= 2 * large.tokens


def test_a_term_list_is_compiled_once_and_the_cache_is_bounded() -> None:
    MATCHERS.clear()
    terms = ("alpha beta", "gamma")
    policy = Policy(blocked_terms=terms)
    check_message(policy, Network.linkedin, "alpha beta")
    compiled = MATCHERS.get(terms)
    check_message(policy, Network.linkedin, "gamma")
    assert MATCHERS.get(terms) is compiled and len(MATCHERS) == 1
    for k in range(MATCHERS.max_entries + 10):
        MATCHERS.get((f"term{k}",))
    assert len(MATCHERS) == MATCHERS.max_entries
    assert MATCHERS.bytes <= MATCHERS.max_bytes
    assert terms_digest(("a b",)) != terms_digest(("a", "b"))
    MATCHERS.clear()


host_part = st.text(alphabet="ab.-", min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    host_part,
    st.lists(host_part | st.sampled_from(["*.a.b", "A.B", "https://a.b/x", ".b", "b."]), min_size=1, max_size=6),
)
def test_allowed_domains_from_a_set_agree_with_the_list_scan(host: str, allowed: list[str]) -> None:
    assert _host_allowed(host, *_allowed_set(tuple(allowed))) == (
        bool(allowed) and domain_allowed(host, tuple(allowed))
    )


def test_links_against_many_allowed_domains_cost_a_set_look_up_each() -> None:
    allowed = tuple(f"d{k}.example" for k in range(1000))
    domains, longest = _allowed_set(allowed)
    assert _host_allowed("www.d999.example", domains, longest)
    assert not _host_allowed("d999.example.evil.io", domains, longest)
    assert not _host_allowed("x" + ".y" * 50_000, domains, longest)  # a suffix past the longest is not tried


def test_a_list_built_for_many_readings_is_stopped_by_the_step_budget() -> None:
    """Terms made of the readings "iai", "ai", "ia", "a" of the token "!a!": every path of the trie
    is alive at every token. The check stops at its budget and reports the rest as unchecked; what it
    reported before that is what the old matcher reported there."""
    rng = random.Random(3)
    combos = [" ".join(c) for c in itertools.product(["iai", "ai", "ia", "a"], repeat=5)]
    terms = tuple(rng.sample(combos, 1000)) + tuple(f"{c} zz{k}" for k, c in enumerate(rng.choices(combos, k=1000)))
    text = " ".join(["!a!"] * 2000)
    stats = MatchStats()
    found = Matcher(terms).find(text, stats)
    worst_token = 4 * Matcher(terms).nodes  # one token's walk visits each node at most once
    assert stats.steps <= STEPS_PER_TOKEN * stats.tokens + STEPS_BASE + worst_token
    assert found[-1].message == UNCHECKED and found[-1].span[1] == len(text)
    cut = found[-1].span[0]
    assert 0 < cut < len(text) // 2
    assert found[:-1] == [v for v in reference.find_blocked_terms(terms, text[: cut + 200]) if v.span[0] < cut]
