"""The languages people read what the platform writes to them in (issue 18, ADR 0018): messages
(notifications) and the pages behind the links in them (sharing's one-click share pages).

English is the fallback of every other language. Words live in template directories, one per
language, beside the English templates: ``templates/<name>`` is English, ``templates/<language>/<name>``
the same text in that language (:func:`template_names` gives the order to look them up in). Whose
language: the first of a list of choices that we write in (:func:`locale_of`): a person's own, the
directory's, the tenant's, or, for a page with nothing better, the browser's ``Accept-Language``
(:func:`from_accept_language`).
"""

from __future__ import annotations

#: The languages we write in; the first is the fallback of every other.
LANGUAGES = ("en", "de")
DEFAULT = LANGUAGES[0]

# An Accept-Language header is read up to this many characters and this many entries (a browser
# sends a handful; anything longer is cut, not parsed).
MAX_ACCEPT_LANGUAGE = 500
MAX_ACCEPT_ENTRIES = 20


def _language(tag: str) -> str:
    """The primary language of a BCP 47 tag (``de-AT``, ``de_CH`` -> ``de``), lower case."""
    return tag.strip().replace("_", "-").split("-")[0].lower()


def locale_of(*choices: str | None) -> str:
    """The first of ``choices`` (BCP 47 tags, most wanted first) whose language we write in, else
    English: ``de-AT`` and ``de_CH`` are German."""
    for choice in choices:
        if choice and (language := _language(choice)) in LANGUAGES:
            return language
    return DEFAULT


def from_accept_language(header: str | None) -> str | None:
    """The language we write in that an ``Accept-Language`` header (RFC 9110 12.5.4) wants most
    (highest ``q``, the first on a tie), or None when it wants none of ours (``*`` is none: the
    caller's own default applies)."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for i, entry in enumerate(header[:MAX_ACCEPT_LANGUAGE].split(",")[:MAX_ACCEPT_ENTRIES]):
        tag, _, params = entry.partition(";")
        language = _language(tag)
        if language not in LANGUAGES:
            continue
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                continue
        if not 0 < q <= 1:
            continue
        if best is None or (q, -i) > (best[0], best[1]):
            best = (q, -i, language)
    return best[2] if best else None


def template_names(name: str, locale: str) -> list[str]:
    """Where the text ``name`` is looked up for ``locale``: its translation, then the English one."""
    return [name] if locale == DEFAULT else [f"{locale}/{name}", name]
