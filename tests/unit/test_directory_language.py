"""The directory's language for a person (issue 18): content reads SCIM ``preferredLanguage``, else
``locale``, from the stored resource and publishes it in ``member.provisioned``; anything that is
not a language tag is dropped."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context, User

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
