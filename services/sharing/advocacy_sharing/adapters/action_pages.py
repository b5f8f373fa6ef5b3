"""The pages a person sees behind a one-click share button (ADR 0016): the confirmation that
``GET`` shows (it submits itself; a button when scripts are off) and the pages that explain why a
link did nothing. Small, self-contained HTML from ``templates/share_action.html.j2``, every value
escaped (Jinja2's autoescape), in the reader's language: ``templates/<language>/`` as
notifications' messages are (ADR 0018, :mod:`advocacy_common.languages`), English when there is no
translation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import jinja2

from advocacy_common import languages
from advocacy_common.networks import NAMES, Network

_PAGES = jinja2.Environment(
    loader=jinja2.PackageLoader("advocacy_sharing.adapters", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    auto_reload=False,
)


def _render(kind: str, language: str | None, **context: Any) -> str:
    locale = languages.locale_of(language)
    names = languages.template_names("share_action.html.j2", locale)
    values = {"item_title": None, "network": None, "action_url": None, "intent": None, "reason": None}
    return _PAGES.select_template(names).render({**values, **context, "kind": kind})


def confirm(network: Network, title: str | None, action_path: str, token: str, language: str | None = None) -> str:
    """``GET``: changes nothing (mail scanners prefetch links); the form POSTs at once when scripts
    run, and its button does the same without them."""
    action_url = f"{action_path}?token={quote(token)}"
    return _render("confirm", language, network=NAMES[network], item_title=title, action_url=action_url, board_url="")


def explain(
    kind: str,
    board_url: str,
    *,
    title: str | None = None,
    reason: str | None = None,
    intent: str | None = None,
    language: str | None = None,
) -> str:
    """Why the link did nothing (``kind``: used, expired, refused, malformed, busy), and where to go
    instead, in ``language`` (English when we do not write in it)."""
    return _render(kind, language, board_url=board_url, item_title=title, reason=reason, intent=intent)
