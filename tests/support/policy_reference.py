"""The policy matcher as it was before issue 12 (nested loops: every term sharing a token's first
word tried at every token), kept unchanged as the reference the new matcher is compared with in
``test_policy_matcher.py``. Only its imports changed: it reads the normaliser and the tokens from the
library, which the new matcher uses too."""

from __future__ import annotations

import functools

from advocacy_common.policy import BLOCKED_TERM, Violation, _normalize, _Reading, _tokens, term_words


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
