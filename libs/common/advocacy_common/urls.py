"""One canonical form for every URL the platform stores and sends people to.

A URL is accepted only if a browser opens it the way everything else here reads it, and then it is
kept as its WHATWG serialisation (the form browsers themselves produce): lower-case host, IDNA,
percent-encoded path and query, ``/`` for an empty path. Whatever later appends to it (the
redirect's UTM parameters and click id) appends to that text without parsing it again with
another parser's rules, so the host a visitor's browser sees in a ``Location`` is the host the
admin approved.

Refused, because parsers disagree on them (the issue-13 open redirect was
``https://good.example\\@evil.example/``: WHATWG reads host ``good.example``, a backslash-blind
parser ``evil.example``):
- any scheme but http and https, and a scheme not followed by ``//``;
- credentials (``user@``, ``user:pw@``) and any ``@`` or backslash in the authority;
- control characters (C0, DEL; WHATWG silently drops tabs and newlines, other parsers do not);
- a URL longer than :data:`MAX_URL` characters, as given or once serialised.

Pure: the WHATWG parser is pydantic-core's (the Rust ``url`` crate).
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError, Url, ValidationError

MAX_URL = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_START = re.compile(r"(?i)(https?)://([^/?#]*)")


class RefusedURL(ValueError):
    """Why a URL is refused, in words an admin can act on."""


def canonical_url(raw: str) -> str:
    """The WHATWG serialisation of ``raw``, or :class:`RefusedURL` saying why not."""
    value = raw.strip(" ")
    if len(value) > MAX_URL:
        raise RefusedURL(f"URL longer than {MAX_URL} characters")
    if _CONTROL.search(value):
        raise RefusedURL("URL contains control characters (tab, newline, ...)")
    start = _START.match(value)
    if start is None:
        raise RefusedURL("only http(s) URLs of the form http(s)://host/... can be shared")
    authority = start.group(2)
    if "\\" in authority:
        raise RefusedURL("URL has a backslash in its host part")
    if "@" in authority:
        raise RefusedURL("URLs with credentials are refused")
    try:
        url = Url(value)
    except (ValidationError, PydanticCustomError) as e:
        raise RefusedURL(f"not a valid URL: {value[:100]!r}") from e
    if url.scheme not in ("http", "https") or not url.host:
        raise RefusedURL("URL needs an http(s) scheme and a host")
    if url.username or url.password:
        raise RefusedURL("URLs with credentials are refused")
    out = str(url)
    if len(out) > MAX_URL:
        raise RefusedURL(f"URL longer than {MAX_URL} characters once encoded")
    return out


def host_of(canonical: str) -> str | None:
    """The host a WHATWG parser sees (for checks and tests)."""
    return Url(canonical).host
