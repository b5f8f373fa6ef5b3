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
import re
import unicodedata
from collections.abc import Mapping
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

    def limit_for(self, network: Network) -> int:
        """The effective length limit: the tenant's, never above the network's own."""
        own = RULES[network].max_length
        tenant = self.max_lengths.get(str(network))
        return own if tenant is None else max(0, min(own, tenant))


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


@functools.lru_cache(maxsize=256)
def _compile_terms(terms: tuple[str, ...]) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """First word -> [(words, term)], longest terms first."""
    by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for term in terms:
        words = term_words(term)
        if words:
            by_first.setdefault(words[0], []).append((words, term))
    for entries in by_first.values():
        entries.sort(key=lambda e: -len(e[0]))
    return by_first


def _match_at(tokens: list[tuple[_Reading, ...]], i: int, words: tuple[str, ...]) -> tuple[int, int] | None:
    """The normalised span where ``words`` match the tokens from ``i`` on, or None."""
    if i + len(words) > len(tokens):
        return None
    start = end = -1
    for k, want in enumerate(words):
        hit = next((v for v in tokens[i + k] if v[0] == want), None)
        if hit is None:
            return None
        if k == 0:
            start = hit[1]
        end = hit[2]
    return start, end


def find_blocked_terms(terms: tuple[str, ...], text: str) -> list[Violation]:
    if not terms or not text:
        return []
    compiled = _compile_terms(terms)
    normalized, index = _normalize(text)
    tokens = _tokens(normalized, index, text)
    found: list[Violation] = []
    for i, readings in enumerate(tokens):
        candidates = [c for r in readings for c in compiled.get(r[0], ())]
        if not candidates:
            continue
        for term_seq, term in sorted(candidates, key=lambda c: -len(c[0])):
            span = _match_at(tokens, i, term_seq)
            if span is not None:
                start, end = index[span[0]], index[span[1] - 1] + 1
                found.append(Violation(BLOCKED_TERM, f"contains the blocked term {term!r}", (start, end)))
                break
    return found


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
        for url, start, end in find_links(text):
            host = link_host(url)
            if host is None or not domain_allowed(host, policy.allowed_domains):
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
