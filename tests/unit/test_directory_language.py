"""The directory's language for a person (issue 18): content reads SCIM ``preferredLanguage``, else
``locale``, from the stored resource and publishes it in ``member.provisioned``; anything that is
not a language tag is dropped."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context, User

from advocacy_common import languages
from advocacy_content.adapters.directory import language_of


def stored(**attributes: Any) -> dict[str, Any]:
    return dict(User(user_name="ann", **attributes).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


@pytest.mark.parametrize(
    ("resource", "language"),
    [
        (stored(preferred_language="de-DE", locale="en-US"), "de-DE"),
        (stored(locale="de_AT"), "de_AT"),
        (stored(), None),
        (stored(preferred_language="<b>de</b>"), None),
        (stored(preferred_language="de-" + "x" * 40), None),
        ({"preferredLanguage": 7, "locale": "fr"}, "fr"),
        (None, None),
    ],
)
def test_the_language_comes_from_preferred_language_then_locale(resource: Any, language: str | None) -> None:
    assert language_of(resource) == language


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("fr-FR, de;q=0.5", "de"),  # the first language we write in, by q
        ("en;q=0.4, de-AT;q=0.7", "de"),
        ("fr, *", None),  # none of ours: the caller's default
        ("de;q=0, en;q=oops", None),  # refused (q=0) or unreadable
        ("", None),
        (None, None),
        ("x-" * 5000 + ",de", None),  # read up to a bound, not parsed whole
    ],
)
def test_a_browsers_accept_language_picks_a_language_we_write_in(header: str | None, language: str | None) -> None:
    assert languages.from_accept_language(header) == language


def test_the_choice_of_a_language_falls_through_to_english() -> None:
    assert languages.locale_of(None, "de_CH") == "de" and languages.locale_of("fr", "") == "en"
    assert languages.template_names("page.j2", "de") == ["de/page.j2", "page.j2"]
    assert languages.template_names("page.j2", "en") == ["page.j2"]
