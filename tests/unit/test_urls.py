"""Canonical URLs (advocacy_common.urls) and the redirect's Location built from them: the host an
independent WHATWG parser (ada, the parser of Node.js) sees in the Location is the host it sees in
the URL the admin approved, for a corpus of known tricks and for generated URLs."""

from __future__ import annotations

import ada_url
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advocacy_common.urls import MAX_URL, RefusedURL, canonical_url, host_of
from advocacy_sharing import domain

pytestmark = pytest.mark.unit

# Each of these was accepted by the old validator, and the old redirect (urllib re-serialising the
# raw string) sent the browser to evil.example (issue 13).
OPEN_REDIRECTS = [
    "https://good.example\\@evil.example/x",
    "HTTPS://GOOD.EXAMPLE\\@EVIL.EXAMPLE/x",
    "https://good.example:443\\@evil.example/x",
    "https://good.example\\\\@evil.example/x",
    "https://good.example\t\\@evil.example/x",
    "https://good.example\\@[::1]/x",
    "https://good.example\\@evil.example",
]
TRICKS = [
    *OPEN_REDIRECTS,
    "https://good.example@evil.example/",
    "https://user:pw@good.example/",
    "https:\\\\evil.example/x",
    "https:/evil.example/x",
    "https:evil.example/x",
    "//evil.example/x",
    "https://good.example%2F@evil.example/",
    "https://good.example%5C@evil.example/",
    "https://good.exa\nmple/",
    "https://good.example/\x00",
    "https://good.example#@evil.example/",
    "https://good.example?@evil.example/",
    "https://good.example/path\\..\\..\\@evil.example",
    "https://\uff27\uff2f\uff2f\uff24.example/",  # full-width letters
    "https://good.example./a?b=1&utm_source=x&adv_click=forged#frag",
    "https://[::ffff:127.0.0.1]/",
    "https://0x7f.1/",
    "https://good.example:8443/a b/ä?q=ä ö&x=%zz#f g",
    "http://xn--mnchen-3ya.de/",
    "https://münchen.de/",
]


def _location(approved: str) -> str | None:
    """What the redirect sends for a link to ``approved`` (domain.link_destination + the click id
    slot, as adapters/redirect.py assembles them)."""
    dest = domain.link_destination(approved, network="linkedin", campaign="big-news")
    return None if dest is None else domain.with_click_id(dest, "CLICKID")


def _check(raw: str) -> bool:
    """True when accepted (and then safe); False when refused."""
    try:
        stored = canonical_url(raw)
    except RefusedURL:
        assert _location(raw) is None  # an old row holding it answers 410, not a redirect
        return False
    location = _location(stored)
    assert location is not None
    seen = [ada_url.URL(u) for u in (location, raw, stored)]
    assert {u.hostname for u in seen} == {host_of(stored)}  # the same host, as ada and as pydantic see it
    assert len({u.port for u in seen}) == 1
    assert canonical_url(stored) == stored  # the stored form is a fixed point
    assert location.isascii()
    return True


@pytest.mark.parametrize("raw", TRICKS)
def test_every_trick_is_refused_or_keeps_its_host(raw: str) -> None:
    _check(raw)


@pytest.mark.parametrize("raw", OPEN_REDIRECTS)
def test_the_open_redirects_of_issue_13_are_refused(raw: str) -> None:
    with pytest.raises(RefusedURL):
        canonical_url(raw)


def test_what_is_stored_is_the_whatwg_serialisation() -> None:
    assert canonical_url("HTTPS://Good.Example:443/a b?q=ä#f") == "https://good.example/a%20b?q=%C3%A4#f"
    assert canonical_url("https://münchen.de") == "https://xn--mnchen-3ya.de/"
    assert canonical_url("  https://e.com/x  ") == "https://e.com/x"
    with pytest.raises(RefusedURL, match="longer than"):
        canonical_url("https://e.com/" + "a" * MAX_URL)
    with pytest.raises(RefusedURL, match=r"longer than .* once encoded"):
        canonical_url("https://e.com/" + "ä" * (MAX_URL // 3))


def test_the_location_keeps_the_query_as_written() -> None:
    location = _location("https://e.com/a?b=%7Bx%7D&c=1+2&utm_source=old&adv_click=forged#top")
    assert location == (
        "https://e.com/a?b=%7Bx%7D&c=1+2&utm_source=linkedin&utm_medium=employee_advocacy"
        "&utm_campaign=big-news&adv_click=CLICKID#top"
    )


_AUTHORITY = st.text(alphabet="abcgoode.xl:@\\/%5C2F[]:0189\t -_ÿü", min_size=0, max_size=30)
_REST = st.text(alphabet="abc/\\?#&=@%2F5C .:ü\t", max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS", "hTtP"]),
    sep=st.sampled_from(["://", ":/", ":\\\\", ":"]),
    authority=_AUTHORITY,
    rest=_REST,
)
def test_generated_urls_are_refused_or_keep_their_host(scheme: str, sep: str, authority: str, rest: str) -> None:
    _check(f"{scheme}{sep}{authority}{rest}")
