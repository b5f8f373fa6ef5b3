"""The tenant sharing policy and the matcher that judges a message against it.

Content (captions, ``POST /v1/policy/check``) and sharing (the message an employee posts) both call
:func:`check_message`, so a message is judged the same way everywhere.

Blocked terms are matched on *words* of a normalised form of the text, so a term hidden with
look-alike characters still matches while a term inside a longer word does not (no Scunthorpe
problem). :func:`normalize` does, per character of the original text:

1. NFKD compatibility decomposition (full-width letters, ligatures, circled letters... become plain;
   this is NFKC's compatibility mapping, and decomposing also separates accents from letters),
2. case folding,
3. removal of format characters (zero-width space/joiners, soft hyphen, bidi controls: Unicode
   category ``Cf``) and of combining marks (accents: ``Mn``/``Me``),
4. a look-alike map: digits, symbols and Cyrillic/Greek letters commonly used for Latin letters.

It keeps, for every character of the normalised text, the index of the original character it came
from, so every violation's span points into the original text.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from advocacy_common.networks import RULES, Network, text_length

if TYPE_CHECKING:
    from advocacy_common.events.content import PolicyUpdated

BLOCKED_TERM = "blocked_term"
MISSING_DISCLOSURE = "missing_disclosure"
DOMAIN_NOT_ALLOWED = "domain_not_allowed"
TOO_LONG = "too_long"
RULE_NAMES = (BLOCKED_TERM, MISSING_DISCLOSURE, DOMAIN_NOT_ALLOWED, TOO_LONG)

# Applied after case folding, to single characters. Both the text and the blocked terms go through
# it, so a class of look-alikes collapses onto one letter: "1", "l", "|" and "!" all become "i".
LOOKALIKES: Mapping[str, str] = MappingProxyType(
    {
        # digits and symbols
        "0": "o",
        "1": "i",
        "2": "z",
        "3": "e",
        "4": "a",
        "5": "s",
        "6": "b",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "\u20ac": "e",  # euro sign
        "\u00a3": "i",  # pound sign (an l, which reads as i)
        "!": "i",
        "|": "i",
        "+": "t",
        "\u00a2": "c",  # cent sign
        "l": "i",  # l and 1 and I look alike: one class
        # Cyrillic letters that look Latin
        "\u0430": "a",  # cyrillic small letter a
        "\u0432": "b",  # cyrillic small letter ve
        "\u0435": "e",  # cyrillic small letter ie
        "\u0451": "e",  # cyrillic small letter io
        "\u043a": "k",  # cyrillic small letter ka
        "\u043c": "m",  # cyrillic small letter em
        "\u043d": "h",  # cyrillic small letter en
        "\u043e": "o",  # cyrillic small letter o
        "\u0440": "p",  # cyrillic small letter er
        "\u0441": "c",  # cyrillic small letter es
        "\u0442": "t",  # cyrillic small letter te
        "\u0443": "y",  # cyrillic small letter u
        "\u0445": "x",  # cyrillic small letter ha
        "\u0456": "i",  # cyrillic small letter byelorussian-ukrainian i
        "\u0457": "i",  # cyrillic small letter yi
        "\u0458": "j",  # cyrillic small letter je
        "\u0455": "s",  # cyrillic small letter dze
        "\u0501": "d",  # cyrillic small letter komi de
        "\u051b": "q",  # cyrillic small letter qa
        "\u051d": "w",  # cyrillic small letter we
        "\u04bb": "h",  # cyrillic small letter shha
        # Greek letters that look Latin (after case folding)
        "\u03b1": "a",  # greek small letter alpha
        "\u03b2": "b",  # greek small letter beta
        "\u03b5": "e",  # greek small letter epsilon
        "\u03b7": "n",  # greek small letter eta
        "\u03b9": "i",  # greek small letter iota
        "\u03ba": "k",  # greek small letter kappa
        "\u03bd": "v",  # greek small letter nu
        "\u03bf": "o",  # greek small letter omicron
        "\u03c1": "p",  # greek small letter rho
        "\u03c4": "t",  # greek small letter tau
        "\u03c5": "u",  # greek small letter upsilon
        "\u03c7": "x",  # greek small letter chi
        "\u03c9": "w",  # greek small letter omega
        "\u03c2": "s",  # greek small letter final sigma
        "\u03c3": "s",  # greek small letter sigma
    }
)

_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule a message breaks; ``span`` is ``[start, end)`` in the original text."""

    rule: str
    message: str
    span: tuple[int, int]

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, "span": [self.span[0], self.span[1]]}


def _frozen(m: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True, slots=True)
class Policy:
    """A version of a tenant's sharing policy (what ``io.advocacy.policy.updated.v1`` carries)."""

    version: int = 0
    blocked_terms: tuple[str, ...] = ()
    required_disclosures: Mapping[str, str] = field(default_factory=_frozen)  # network -> "#employee"
    allowed_domains: tuple[str, ...] = ()  # empty: any domain
    max_lengths: Mapping[str, int] = field(default_factory=_frozen)  # network -> tenant limit

    @classmethod
    def from_event(cls, e: PolicyUpdated) -> Policy:
        return cls(
            version=e.version,
            blocked_terms=tuple(e.blocked_terms),
            required_disclosures=_frozen(e.required_disclosures),
            allowed_domains=tuple(e.allowed_domains),
            max_lengths=_frozen(e.max_lengths),
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickled to the process pool that checks messages (a mapping proxy does not pickle)
        return (
            _policy,
            (
                self.version,
                self.blocked_terms,
                dict(self.required_disclosures),
                self.allowed_domains,
                dict(self.max_lengths),
            ),
        )

    def limit_for(self, network: Network) -> int:
        """The effective length limit: the tenant's, never above the network's own."""
        own = RULES[network].max_length
        tenant = self.max_lengths.get(str(network))
        return own if tenant is None else max(0, min(own, tenant))


def _policy(
    version: int,
    blocked_terms: tuple[str, ...],
    required_disclosures: dict[str, str],
    allowed_domains: tuple[str, ...],
    max_lengths: dict[str, int],
) -> Policy:
    return Policy(version, blocked_terms, _frozen(required_disclosures), allowed_domains, _frozen(max_lengths))


EMPTY_POLICY = Policy()


# -- normalisation ----------------------------------------------------------------------------------
_SYMBOLS = frozenset(k for k in LOOKALIKES if not k.isalnum())


@functools.lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    """What one original character becomes in the normalised text ("" when it is removed)."""
    out = []
    for c in unicodedata.normalize("NFKD", ch).casefold():
        # case folding may produce decomposable characters again; decompose once more
        for d in unicodedata.normalize("NFKD", c):
            if unicodedata.category(d) in ("Cf", "Mn", "Me"):
                continue
            out.append(LOOKALIKES.get(d, d))
    return "".join(out)


# ASCII needs no decomposition: lower-case it and apply the look-alikes in one translate() call.
_ASCII_TABLE = {ord(c): LOOKALIKES.get(c.lower(), c.lower()) for c in map(chr, range(128))}
_WORD = re.compile(r"[^\W_]+")  # runs of str.isalnum() characters


def _normalize(text: str) -> tuple[str, list[int]]:
    """Normalised text and, per character, the index of the original character it came from."""
    if text.isascii():
        return text.translate(_ASCII_TABLE), list(range(len(text)))
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            chars.append(_ASCII_TABLE[ord(ch)])
            index.append(i)
            continue
        folded = _fold_char(ch)
        chars.append(folded)
        index.extend([i] * len(folded))
    return "".join(chars), index


def normalize(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the index of the original character."""
    return _normalize(text)


# A reading of a token: (word, start, end) in the normalised text.
_Reading = tuple[str, int, int]


def _tokens(normalized: str, index: list[int], original: str | None) -> list[tuple[_Reading, ...]]:
    """Runs of word characters, each with its readings: a symbol of the original text at either
    edge is punctuation ("Confidential!") or a letter ("!nternal"). ``original=None``: no symbols."""
    out: list[tuple[_Reading, ...]] = []
    for m in _WORD.finditer(normalized):
        i, j = m.span()
        lead, trail = i, j
        if original is not None:
            while lead < j and original[index[lead]] in _SYMBOLS:
                lead += 1
            while trail > lead and original[index[trail - 1]] in _SYMBOLS:
                trail -= 1
        if lead == i and trail == j:
            out.append(((m.group(0), i, j),))
            continue
        readings: dict[str, _Reading] = {}
        for s in dict.fromkeys((i, lead)):
            for e in dict.fromkeys((j, trail)):
                if s < e:
                    readings.setdefault(normalized[s:e], (normalized[s:e], s, e))
        out.append(tuple(readings.values()))
    return out


def term_words(term: str) -> tuple[str, ...]:
    """A blocked term as the sequence of normalised words it must match (empty: it cannot match)."""
    normalized, index = _normalize(term)
    return tuple(readings[0][0] for readings in _tokens(normalized, index, None))


# -- the matcher --------------------------------------------------------------------------------------
# Caps on a term list (the policy API answers 422 naming the field past them; docs/policy.md). They
# bound what one compiled matcher holds (MAX_BLOCKED_TERMS x MAX_TERM_WORDS trie nodes) and how deep
# one walk can go.
MAX_BLOCKED_TERMS = 2000
MAX_TERM_CHARS = 200
MAX_TERM_WORDS = 8
# A compiled matcher costs roughly this many bytes per trie node plus its words' characters (a dict,
# a node object, the key): the estimate the cache's byte bound counts. tracemalloc, 2,000 terms of 8
# words (16,001 nodes): 5.0 MB measured, 7.0 MB estimated; of 3 words: 1.9 MB, 2.6 MB estimated.
# (Not advocacy_common.caches.SizedLRU: this module is pure, domains import it, and cachetools is
# not for domains.)
_NODE_BYTES = 400
# The most trie steps one check may take: STEPS_PER_TOKEN per token of the text, plus STEPS_BASE.
# Ordinary lists take 1-3 steps per token (bench/RESULTS.md); only a list built so that many readings
# of the same tokens are all terms at the same place (the worst case of the Matcher's docstring) goes
# past it. There the check stops and reports the rest of the text as unchecked, a blocked_term
# violation: the message is refused rather than judged for an unbounded time.
STEPS_PER_TOKEN = 64
STEPS_BASE = 4096
UNCHECKED = "cannot be checked: its words can be read too many ways against the blocked terms"


class _Node:
    __slots__ = ("children", "height", "term", "term_index")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.term: str | None = None  # the earliest term of the list that ends here
        self.term_index = -1
        self.height = 0  # the most words a term ending below this node still needs


@dataclass(slots=True)
class MatchStats:
    """The work one match did: tokens read and trie steps (one child look-up per reading)."""

    tokens: int = 0
    steps: int = 0


class Matcher:
    """A term list compiled once into a word-level trie (a node per distinct word prefix).

    :meth:`find` walks the trie from every token over the token's readings, so its work per token is
    bounded by the trie paths the next tokens can spell: at most ``MAX_TERM_WORDS`` steps per reading
    when no two readings of a token are both words of the list at the same place, and
    ``R + R**2 + ... + R**MAX_TERM_WORDS`` (R <= 4 readings) in the worst case, whatever the number of
    terms. A check stops past ``STEPS_PER_TOKEN`` steps per token (see there). The old matcher tried
    every term sharing the first word at every token."""

    __slots__ = ("_root", "nodes", "size_bytes")

    def __init__(self, terms: tuple[str, ...]) -> None:
        self._root = _Node()
        self.nodes = 1
        chars = 0
        for index, term in enumerate(terms):
            node = self._root
            for w in term_words(term):
                child = node.children.get(w)
                if child is None:
                    child = node.children[w] = _Node()
                    self.nodes += 1
                    chars += len(w)
                node = child
            if node is not self._root and node.term is None:
                node.term, node.term_index = term, index
        _set_heights(self._root)
        self.size_bytes = self.nodes * _NODE_BYTES + chars * 4

    def find(self, text: str, stats: MatchStats | None = None) -> list[Violation]:
        """The blocked terms in ``text``: at each token, the longest term that starts there (ties: the
        earlier reading of the token, then the earlier term of the list)."""
        if not text or not self._root.children:
            return []
        normalized, index = _normalize(text)
        tokens = _tokens(normalized, index, text)
        n = len(tokens)
        root = self._root.children
        steps = 0
        budget = STEPS_PER_TOKEN * n + STEPS_BASE
        found: list[Violation] = []
        for i, readings in enumerate(tokens):
            if steps > budget:
                found.append(Violation(BLOCKED_TERM, UNCHECKED, (index[readings[0][1]], len(text))))
                break
            # the best so far: (words, -reading, -term index) is larger for the winner
            best: tuple[int, int, int] | None = None
            best_node: _Node | None = None
            best_span = (0, 0)
            for r, (word, start, end) in enumerate(readings):
                steps += 1
                first = root.get(word)
                if first is None:
                    continue
                stack = [(first, 1, end)]
                while stack:
                    node, depth, last = stack.pop()
                    if node.term is not None:
                        key = (depth, -r, -node.term_index)
                        if best is None or key > best:
                            best, best_node, best_span = key, node, (start, last)
                    if not node.children or i + depth >= n:
                        continue
                    if best is not None and depth + node.height < best[0]:
                        continue  # nothing below is longer than the match in hand
                    for word2, _s, end2 in tokens[i + depth]:
                        steps += 1
                        child = node.children.get(word2)
                        if child is not None:
                            stack.append((child, depth + 1, end2))
            if best_node is not None:
                start, end = index[best_span[0]], index[best_span[1] - 1] + 1
                term = best_node.term
                found.append(Violation(BLOCKED_TERM, f"contains the blocked term {term!r}", (start, end)))
        if stats is not None:
            stats.tokens += n
            stats.steps += steps
        return found


def _set_heights(root: _Node) -> None:
    """Each node's height, children before parents (iteratively: no recursion limit to meet)."""
    order: list[_Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children.values())
    for node in reversed(order):
        node.height = max((c.height + 1 for c in node.children.values()), default=0)


class _MatcherCache:
    """Compiled matchers by the digest of their term list, least recently used out first. Bounded
    twice: at most ``max_entries`` lists and about ``max_bytes`` of compiled tries (one list at the
    term caps is about MAX_BLOCKED_TERMS x MAX_TERM_WORDS x _NODE_BYTES = 6.4 MB; a larger one is
    compiled for the call and not kept)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, Matcher] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, terms: tuple[str, ...]) -> Matcher:
        key = terms_digest(terms)
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            return hit
        matcher = Matcher(terms)
        if matcher.size_bytes > self.max_bytes:
            return matcher
        self._entries[key] = matcher
        self.bytes += matcher.size_bytes
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size_bytes
        return matcher

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


# Compiled once per term list (a policy version) in each process that checks: 64 lists, 64 MB.
MATCHERS = _MatcherCache(max_entries=64, max_bytes=64 * 1024 * 1024)


def terms_digest(terms: tuple[str, ...]) -> bytes:
    """A key for a term list: SHA-256 over the terms, each prefixed by its length."""
    h = hashlib.sha256()
    for t in terms:
        b = t.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(4, "big"))
        h.update(b)
    return h.digest()


# Characters a term may not hold: control characters (whitespace aside), lone surrogates, private use.
_UNFIT = frozenset(("Cc", "Cs", "Co"))


def term_shape_error(term: str) -> str | None:
    """Why ``term`` cannot be a blocked term (None: it can): past ``MAX_TERM_CHARS`` characters or
    ``MAX_TERM_WORDS`` words once normalised, no letter or digit, or a character of ``_UNFIT``."""
    if len(term) > MAX_TERM_CHARS:
        return f"a blocked term has at most {MAX_TERM_CHARS} characters"
    bad = next((c for c in term if unicodedata.category(c) in _UNFIT and not c.isspace()), None)
    if bad is not None:
        return f"a blocked term cannot hold the character U+{ord(bad):04X}"
    words = term_words(term)
    if not words:
        return "a blocked term needs at least one letter or digit"
    if len(words) > MAX_TERM_WORDS:
        return f"a blocked term has at most {MAX_TERM_WORDS} words (this one reads as {len(words)})"
    return None


def first_misshapen_term(terms: Sequence[str]) -> tuple[int, str] | None:
    """The index of the first term :func:`term_shape_error` refuses, and why (None: all are fit)."""
    for i, term in enumerate(terms):
        problem = term_shape_error(term)
        if problem is not None:
            return i, problem
    return None


def find_blocked_terms(terms: tuple[str, ...], text: str, stats: MatchStats | None = None) -> list[Violation]:
    """Every blocked term in ``text`` (see :class:`Matcher`); the list is compiled once and cached."""
    if not terms or not text:
        return []
    return MATCHERS.get(terms).find(text, stats)


# -- links --------------------------------------------------------------------------------------------
def find_links(text: str) -> list[tuple[str, int, int]]:
    """URLs in the text (http(s):// or www.), without trailing punctuation: (url, start, end)."""
    out = []
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_URL_TRAILING)
        if len(url) <= len("www."):
            continue
        out.append((url, m.start(), m.start() + len(url)))
    return out


def link_host(url: str) -> str | None:
    raw = url if "://" in url else "http://" + url
    try:
        host = urlsplit(raw).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def normalize_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    if "://" in d:
        d = link_host(d) or d
    d = d.removeprefix("*.")
    try:
        return d.encode("idna").decode("ascii")
    except UnicodeError:
        return d


def domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """The host is an allowed domain or a subdomain of one (empty list: everything allowed)."""
    if not allowed:
        return True
    for d in allowed:
        nd = normalize_domain(d)
        if nd and (host == nd or host.endswith("." + nd)):
            return True
    return False


def _allowed_set(allowed: tuple[str, ...]) -> tuple[frozenset[str], int]:
    """The allowed domains normalised once per check, and the longest of them."""
    domains = frozenset(nd for nd in map(normalize_domain, allowed) if nd)
    return domains, max(map(len, domains), default=0)


def _host_allowed(host: str, domains: frozenset[str], longest: int) -> bool:
    """:func:`domain_allowed` against a normalised set: the host itself, or each suffix after one of
    its dots no longer than the longest domain (work bounded per link, whatever the list's length)."""
    if host in domains:
        return True
    i = len(host)
    while (i := host.rfind(".", 0, i)) >= 0 and len(host) - i - 1 <= longest:
        if host[i + 1 :] in domains:
            return True
    return False


# -- the check ----------------------------------------------------------------------------------------
def _has_disclosure(text: str, disclosure: str) -> bool:
    want = unicodedata.normalize("NFKC", disclosure).casefold().strip()
    if not want:
        return True
    have = unicodedata.normalize("NFKC", text).casefold()
    pattern = r"(?<!\w)" + re.escape(want) + r"(?!\w)"
    return re.search(pattern, have) is not None


def _too_long_span(network: Network, text: str, limit: int, link: str | None) -> tuple[int, int]:
    """The characters past the limit: the longest prefix that fits (with the link) ends the span."""
    suffix = f" {link}" if link else ""
    lo, hi = 0, len(text)  # the counted length of text[:k] + suffix is non-decreasing in k
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_length(network, text[:mid] + suffix) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return (lo, len(text))


def message_length(network: Network, text: str, link: str | None = None) -> int:
    """How long the network counts the message, with the tracked link appended when given."""
    return text_length(network, f"{text} {link}" if link else text)


def check_message(policy: Policy, network: Network, text: str, *, link: str | None = None) -> list[Violation]:
    """Every rule ``text`` breaks when posted on ``network`` (with ``link`` appended, if given)."""
    network = Network(network)
    violations = find_blocked_terms(policy.blocked_terms, text)
    disclosure = policy.required_disclosures.get(str(network))
    if disclosure and not _has_disclosure(text, disclosure):
        violations.append(
            Violation(MISSING_DISCLOSURE, f"{network} posts must include {disclosure!r}", (len(text), len(text)))
        )
    if policy.allowed_domains:
        domains, longest = _allowed_set(policy.allowed_domains)
        for url, start, end in find_links(text):
            host = link_host(url)
            if host is None or not _host_allowed(host, domains, longest):
                violations.append(
                    Violation(DOMAIN_NOT_ALLOWED, f"links to {host or url!r} are not allowed", (start, end))
                )
    limit = policy.limit_for(network)
    length = message_length(network, text, link)
    if length > limit:
        with_link = " with the tracked link" if link else ""
        violations.append(
            Violation(
                TOO_LONG,
                f"{length} characters{with_link}; {network} allows {limit}",
                _too_long_span(network, text, limit, link),
            )
        )
    violations.sort(key=lambda v: (v.span, v.rule))
    return violations


# One message to judge: (network, text, the link appended when posted or None).
Message = tuple[Network, str, str | None]


@dataclass(frozen=True, slots=True)
class Judgement:
    """A message judged: its length as the network counts it (with the link) and what it breaks."""

    length: int
    violations: list[Violation]


def judge_messages(policy: Policy, messages: Sequence[Message]) -> list[Judgement]:
    """:func:`message_length` and :func:`check_message` for each message, in order: one call for the
    process pool to run (:mod:`advocacy_common.policycheck`; X's length alone is ~11 ms for 100,000
    characters)."""
    return [
        Judgement(message_length(network, text, link), check_message(policy, network, text, link=link))
        for network, text, link in messages
    ]
