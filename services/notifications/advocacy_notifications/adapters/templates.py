"""Messages from templates: Jinja2, one template per part (subject, text, HTML) in ``templates/``,
in the reader's language, or a tenant's own wording (an override, :mod:`.overrides`).

The HTML part is autoescaped (a title is an admin's text, a URL anyone's); the text and subject
parts are not (they are not HTML), and the subject is folded onto one line.

Languages: ``templates/<name>.*.j2`` is English; ``templates/<locale>/<name>.*.j2`` (``de/``) the
same message in another language. A message with no translation in the reader's language is sent in
English, so a new message needs only its English templates to work. Dates and numbers go through
the ``date``, ``datetime`` and ``number`` filters, which format them in the message's language
(Babel, CLDR data): "3 Dec 2026" and "1,234" in English, "03.12.2026" and "1.234" in German.

Adding a message: its three templates, and its context in :data:`SAMPLES` (an example of every
variable it is rendered with): an override of it may use exactly those variables.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from advocacy_common import languages
from advocacy_notifications.adapters import overrides

log = logging.getLogger("advocacy.notifications.templates")

# The languages messages are written in (the platform's, advocacy_common.languages); the first is
# the fallback for every other.
LOCALES = languages.LANGUAGES
DEFAULT_LOCALE = languages.DEFAULT

_LOADER = jinja2.PackageLoader("advocacy_notifications.adapters", "templates")
# auto_reload off: templates are files of the release, compiled once (a stat per part per message
# was 6 system calls a digest in the benchmark's profile)
_HTML = jinja2.Environment(loader=_LOADER, autoescape=True, undefined=jinja2.StrictUndefined, auto_reload=False)
_TEXT = jinja2.Environment(loader=_LOADER, autoescape=False, undefined=jinja2.StrictUndefined, auto_reload=False)  # noqa: S701 (not HTML)

MAX_SUBJECT = 200


def locale_of(*choices: str | None) -> str:
    """The first of ``choices`` (BCP 47 tags, most wanted first: the person's, then the tenant's)
    whose language we write in, else English: ``de-AT`` and ``de_CH`` are German."""
    return languages.locale_of(*choices)


def _locale(ctx: jinja2.runtime.Context) -> str:
    return str(ctx.get("locale") or DEFAULT_LOCALE)


# Babel parses its locale and pattern on every call (two thirds of a digest's rendering in the
# benchmark's profile); the same few dates and numbers recur across thousands of messages in a pass,
# so the formatted strings are kept (bounded).
@functools.lru_cache(maxsize=4096)
def _formatted_date(value: datetime, form: str, locale: str, zone: str | None) -> str:
    return format_date(value.astimezone(ZoneInfo(zone)) if zone else value, format=form, locale=locale)


@functools.lru_cache(maxsize=4096)
def _formatted_datetime(value: datetime, form: str, locale: str, zone: str | None) -> str:
    return format_datetime(value, format=form, tzinfo=ZoneInfo(zone) if zone else UTC, locale=locale)


@functools.lru_cache(maxsize=4096)
def _formatted_number(value: float, locale: str) -> str:
    return format_decimal(value, locale=locale)


def _zone_of(ctx: jinja2.runtime.Context) -> str | None:
    zone = ctx.get("time_zone")
    return str(zone) if zone else None


@jinja2.pass_context
def _date(ctx: jinja2.runtime.Context, value: datetime, form: str = "medium") -> str:
    return _formatted_date(value, form, _locale(ctx), _zone_of(ctx))


@jinja2.pass_context
def _datetime(ctx: jinja2.runtime.Context, value: datetime, form: str = "medium") -> str:
    return _formatted_datetime(value, form, _locale(ctx), _zone_of(ctx))


@jinja2.pass_context
def _number(ctx: jinja2.runtime.Context, value: float) -> str:
    return _formatted_number(value, _locale(ctx))


# "short", "medium", "long" and "full" are Babel's names; anything else would be a CLDR pattern of
# the template's making, so an override may use only these.
_FORMS = ("short", "medium", "long", "full")


@jinja2.pass_context
def _bounded_date(ctx: jinja2.runtime.Context, value: datetime, form: str = "medium") -> str:
    return str(_date(ctx, value, form if form in _FORMS else "medium"))


@jinja2.pass_context
def _bounded_datetime(ctx: jinja2.runtime.Context, value: datetime, form: str = "medium") -> str:
    return str(_datetime(ctx, value, form if form in _FORMS else "medium"))


FILTERS = {"date": _date, "datetime": _datetime, "number": _number}
for _env in (_HTML, _TEXT):
    _env.filters.update(FILTERS)
overrides.add_filters({"date": _bounded_date, "datetime": _bounded_datetime, "number": _number})

_SAMPLE_AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
# Per message that can be overridden: an example of the context it is rendered with (besides
# ``locale`` and ``time_zone``, which every message has, and ``subject`` in the HTML part).
SAMPLES: dict[str, dict[str, Any]] = {
    "digest": {
        "name": "Ann Example",
        "frequency": "daily",
        "items": [
            {
                "title": "Our new product line",
                "url": "https://example.com/news/1",
                "published_at": _SAMPLE_AT,
                # one-click share buttons (features/share_buttons.py), one per network
                "share": [{"network": "linkedin", "label": "LinkedIn", "url": "https://share.example.com/a?token=x"}],
            },
            {
                "title": "Ten years in Berlin",
                "url": "https://example.com/news/2",
                "published_at": _SAMPLE_AT,
                "share": [],
            },
        ],
        "unsubscribe_url": "https://advocacy.example.com/v1/notifications/unsubscribe?token=sample",
    },
    # per-event notices (features/notices.py): each has ``name`` and ``unsubscribe_url`` too
    **{
        name: {
            "name": "Ann Example",
            "unsubscribe_url": "https://advocacy.example.com/v1/notifications/unsubscribe?token=sample",
            **context,
        }
        for name, context in (
            ("suggestion_approved", {"title": "Our new product line", "reason": None}),
            ("suggestion_rejected", {"title": "Our new product line", "reason": "Not our tone; try again?"}),
            ("coaching_replied", {}),
            ("badge_earned", {"badge": "Ten shares"}),
            ("challenge_started", {"challenge": "Spring sprint", "ends_at": _SAMPLE_AT, "goal_kind": "top_n"}),
            ("challenge_ended", {"challenge": "Spring sprint", "ends_at": _SAMPLE_AT, "goal_kind": "top_n"}),
            ("challenge_won", {"challenge": "Spring sprint", "rank": 1, "points": 120, "team": None}),
            ("reward_fulfilled", {"reward": "A company hoodie"}),
            # scheduled notices (features/nudges.py, features/expiring.py)
            (
                "nudge",
                {
                    "days": 30,
                    "never": False,
                    "items": [{"title": "Our new product line", "url": "https://example.com/1"}],
                },
            ),
            (
                "expiring",
                {"item": {"title": "Our new product line", "url": "https://example.com/1"}, "expires_at": _SAMPLE_AT},
            ),
        )
    },
    # the weekly programme report to admins (features/reports.py): metrics' figures, each with the
    # week before's and the change (``percent`` None when the week before was zero)
    "report": {
        "name": "Ann Example",
        "unsubscribe_url": "https://advocacy.example.com/v1/notifications/unsubscribe?token=sample",
        "start": datetime(2026, 11, 23, tzinfo=UTC),
        "end": datetime(2026, 11, 29, tzinfo=UTC),
        "figures": [
            {"key": "shares", "value": 64, "previous": 55, "change": {"delta": 9, "percent": 16}},
            {"key": "clicks", "value": 113, "previous": 114, "change": {"delta": -1, "percent": -1}},
            {"key": "reach", "value": 164_286, "previous": 0, "change": {"delta": 164_286, "percent": None}},
            {"key": "conversions", "value": 45, "previous": 45, "change": {"delta": 0, "percent": 0}},
        ],
        "adoption": {
            "sharers": 15,
            "eligible": 19,
            "rate": 78.9,
            "previous_sharers": 13,
            "previous_eligible": 20,
            "change": {"delta": 2, "percent": 15},
        },
        "top_content": [
            {"key": "c1", "label": "Our new product line", "shares": 8, "clicks": 18, "reach": 17_565, "conversions": 8}
        ],
        "top_advocates": [
            {"key": "e1", "label": "Ann Example", "shares": 6, "clicks": 17, "reach": 20_501, "conversions": 8}
        ],
    },
}
_COMMON_SAMPLE: dict[str, Any] = {"locale": "en", "time_zone": "UTC", "subject": "A subject"}


def sample(name: str, locale: str = DEFAULT_LOCALE) -> dict[str, Any]:
    """The example context of message ``name`` (KeyError: not a message that can be overridden)."""
    return {**_COMMON_SAMPLE, **SAMPLES[name], "locale": locale}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def _part(name: str, part: str, suffix: str, env: jinja2.Environment, ctx: Mapping[str, Any], over: Any) -> str:
    if over is not None:
        try:
            out = overrides.render(over, part, ctx)
            if out is not None:
                return out
        except Exception:  # a stored override that fails (it passed validation): the built-in one
            log.exception("template override failed; the built-in template is used", extra={"template": name})
    return env.select_template(languages.template_names(f"{name}.{suffix}", str(ctx["locale"]))).render(ctx)


def render(
    name: str,
    context: Mapping[str, Any],
    locale: str = DEFAULT_LOCALE,
    override: overrides.Compiled | None = None,
) -> Rendered:
    """The three parts of message ``name`` (``<name>.subject.j2``, ``.txt.j2``, ``.html.j2``) in
    ``locale`` (English where the message has no translation), or from the tenant's ``override``
    for the parts it has. ``context`` may carry ``time_zone`` (dates are shown in it; UTC if not)."""
    ctx = {**context, "locale": locale_of(locale)}
    subject = " ".join(_part(name, "subject", "subject.j2", _TEXT, ctx, override).split())[:MAX_SUBJECT]
    text = _part(name, "text", "txt.j2", _TEXT, ctx, override)
    html = _part(name, "html", "html.j2", _HTML, {**ctx, "subject": subject}, override)
    return Rendered(subject, text, html)


# A value's place in a line rendered by :func:`render_line` (NUL never comes out of a template file).
_MARK = re.compile("\x00([0-9]+)\x00")


def render_line(name: str, values: Mapping[str, str | None], locale: str = DEFAULT_LOCALE) -> list[tuple[str, bool]]:
    """A one-line message for a team channel (``<name>.line.j2``, in ``locale``, English where it has
    no translation) as segments ``(text, bold)``: each of ``values`` is a bold segment of its own,
    the template's words plain. The values never pass through the template (it sees a marker, or
    None for a missing value), so the receiver's escaping (adapters/chat.py) sees them whole."""
    keys = list(values)
    marks = {k: (f"\x00{i}\x00" if values[k] else None) for i, k in enumerate(keys)}
    line = " ".join(_part(name, "text", "line.j2", _TEXT, {**marks, "locale": locale_of(locale)}, None).split())
    parts = _MARK.split(line)
    segments: list[tuple[str, bool]] = []
    for i, part in enumerate(parts):
        if i % 2:
            segments.append((str(values[keys[int(part)]]), True))
        elif part:
            segments.append((part, False))
    return segments


def words(name: str, context: Mapping[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    """A few words (``<name>.line.j2``) in ``locale``, English where there is no translation: a
    badge's title (``badge_title``, from its key and the English ``fallback``)."""
    return " ".join(_part(name, "text", "line.j2", _TEXT, {**context, "locale": locale_of(locale)}, None).split())


def render_page(name: str, context: Mapping[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    """A web page (``<name>.html.j2``), autoescaped."""
    ctx = {**context, "locale": locale_of(locale)}
    return _part(name, "html", "html.j2", _HTML, ctx, None)
