"""Messages from templates: Jinja2, one template per part (subject, text, HTML) in ``templates/``.

The HTML part is autoescaped (a title is an admin's text, a URL anyone's); the text and subject
parts are not (they are not HTML), and the subject is folded onto one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

_LOADER = jinja2.PackageLoader("advocacy_notifications.adapters", "templates")
_HTML = jinja2.Environment(loader=_LOADER, autoescape=True, undefined=jinja2.StrictUndefined)
_TEXT = jinja2.Environment(loader=_LOADER, autoescape=False, undefined=jinja2.StrictUndefined)  # noqa: S701 (not HTML)

MAX_SUBJECT = 200


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(name: str, context: Mapping[str, Any]) -> Rendered:
    """The three parts of message ``name`` (``<name>.subject.j2``, ``.txt.j2``, ``.html.j2``)."""
    subject = " ".join(_TEXT.get_template(f"{name}.subject.j2").render(context).split())[:MAX_SUBJECT]
    text = _TEXT.get_template(f"{name}.txt.j2").render(context)
    html = _HTML.get_template(f"{name}.html.j2").render({**context, "subject": subject})
    return Rendered(subject, text, html)


def render_page(name: str, context: Mapping[str, Any]) -> str:
    """A web page (``<name>.html.j2``), autoescaped."""
    return _HTML.get_template(f"{name}.html.j2").render(context)
