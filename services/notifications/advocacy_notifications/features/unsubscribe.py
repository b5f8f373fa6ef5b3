"""Unsubscribe without logging in: a signed link in every message (adapters/links.py). ``GET``
shows a page with one button; ``POST`` (the button, or a mail client's one-click unsubscribe of
RFC 8058) turns that category off on that channel. Doing it twice changes nothing; an erased
person's link does nothing (no preference is written about them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.errors import BadRequest
from advocacy_notifications.adapters import links, templates
from advocacy_notifications.adapters.links import LINK_KEY
from advocacy_notifications.adapters.tombstones import TOMBSTONES
from advocacy_notifications.domain import Category, Channel, Frequency
from advocacy_notifications.features import preferences, wording


async def _claims(session: AsyncSession, token: str) -> tuple[str, str, Category, Channel]:
    try:
        c = links.read(await LINK_KEY.get(session), token)
        return c["t"], c["e"], Category(c["c"]), Channel(c["ch"])
    except (links.BadLink, KeyError, ValueError) as e:
        raise BadRequest(
            "this unsubscribe link is not valid (was it copied whole?); "
            "you can change what you receive in your notification preferences",
            code="bad_link",
        ) from e


async def check(session: AsyncSession, token: str) -> dict[str, Any]:
    """What the link would turn off (400 for a link we did not make)."""
    _, _, category, channel = await _claims(session, token)
    return {"category": category, "channel": channel, "frequency": Frequency.off}


async def unsubscribe(session: AsyncSession, token: str) -> dict[str, Any]:
    tenant_id, employee_id, category, channel = await _claims(session, token)
    if not await TOMBSTONES.is_erased(session, tenant_id, employee_id):
        await preferences.choose(session, tenant_id, employee_id, category, channel, Frequency.off)
    return {"category": category, "channel": channel, "frequency": Frequency.off}


async def language(session: AsyncSession, token: str) -> str:
    """The language of the link's person (their messages'), for the page."""
    tenant_id, employee_id, _, _ = await _claims(session, token)
    return (await wording.language_of(session, tenant_id, employee_id))[0].value


def page(done: bool, token: str, language: str = templates.DEFAULT_LOCALE) -> str:
    """The page a person sees, in their language: a confirm button (``GET``) or the confirmation
    (``POST``)."""
    return templates.render_page("unsubscribe", {"done": done, "token": token}, language)
