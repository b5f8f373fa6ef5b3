"""How a message is worded for its reader: in their language, and in the tenant's own words.

- The language of a person's messages: their own choice (``PUT /v1/notifications/language``), else
  the directory's for them (SCIM ``preferredLanguage``/``locale``, from content's
  ``member.provisioned``) when we write in it, else the tenant's default
  (``PUT /v1/notifications/defaults/language``), else English.
- A tenant's override of a message's template, per message and language
  (``/v1/notifications/templates/{name}/{language}``): checked when it is saved, by compiling it in
  the sandbox and rendering it against the message's example context (adapters/overrides.py); a
  refusal is a 422 naming the part and the line. At compose time, :class:`Wording` gives the
  compiled override for (message, language), if the tenant has one; a stored override that no
  longer compiles (it should not happen) is logged and the built-in template is used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.db import table_of
from advocacy_common.errors import Unprocessable
from advocacy_notifications import db
from advocacy_notifications.adapters import overrides, templates
from advocacy_notifications.db import Member, MemberLanguage, TemplateOverride
from advocacy_notifications.domain import Language, TemplateName

log = logging.getLogger("advocacy.notifications.wording")

_OVERRIDES = table_of(TemplateOverride)
_MEMBER_LANGUAGES = table_of(MemberLanguage)
# At most this many ids in one IN list (PostgreSQL's protocol allows 32,767 parameters a statement;
# a pass of digest_batch people may be up to 100,000): more, and the tenant's rows are read instead.
_MAX_IDS = 1000


# -- languages ---------------------------------------------------------------------------------------
async def tenant_language(session: AsyncSession, tenant_id: str) -> Language:
    return (await db.load_defaults(session, tenant_id)).language


async def set_tenant_language(session: AsyncSession, tenant_id: str, language: Language, now: datetime) -> Language:
    await db.save_defaults(session, tenant_id, now, language=language.value)
    return language


async def member_language(session: AsyncSession, tenant_id: str, employee_id: str) -> Language | None:
    """The person's own choice (None: they chose nothing, the tenant's default applies)."""
    row = await session.get(MemberLanguage, (tenant_id, employee_id))
    return Language(row.language) if row is not None else None


async def language_of(session: AsyncSession, tenant_id: str, employee_id: str) -> tuple[Language, bool]:
    """The language the person's messages are written in, and whether they chose it."""
    chosen = await member_language(session, tenant_id, employee_id)
    if chosen is not None:
        return chosen, True
    member = await session.get(Member, (tenant_id, employee_id))
    default = await tenant_language(session, tenant_id)
    directory = member.directory_language if member is not None else None
    return Language(templates.locale_of(directory, default.value)), False


async def set_member_language(
    session: AsyncSession, tenant_id: str, employee_id: str, language: Language | None, now: datetime
) -> Language | None:
    """Choose (or, with None, forget the choice: the tenant's default applies again)."""
    if language is None:
        await session.execute(
            sa.delete(_MEMBER_LANGUAGES).where(
                _MEMBER_LANGUAGES.c.tenant_id == tenant_id, _MEMBER_LANGUAGES.c.employee_id == employee_id
            )
        )
        return None
    stmt = pg_insert(_MEMBER_LANGUAGES).values(
        tenant_id=tenant_id, employee_id=employee_id, language=language.value, updated_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"], set_={"language": stmt.excluded.language, "updated_at": now}
        )
    )
    return language


# -- overrides ---------------------------------------------------------------------------------------
def _out(row: TemplateOverride) -> dict[str, Any]:
    return {
        "name": row.name,
        "language": row.language,
        "subject": row.subject,
        "text": row.text,
        "html": row.html,
        "updated_at": row.updated_at,
    }


async def list_overrides(session: AsyncSession, tenant_id: str) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(TemplateOverride)
        .where(TemplateOverride.tenant_id == tenant_id)
        .order_by(col(TemplateOverride.name), col(TemplateOverride.language))
    )
    return [_out(r) for r in rows.all()]


async def get_override(session: AsyncSession, tenant_id: str, name: TemplateName, language: Language) -> dict[str, Any]:
    """The override, or (none) every part null: the built-in template is used."""
    row = await session.get(TemplateOverride, (tenant_id, name.value, language.value))
    if row is None:
        return {"name": name.value, "language": language.value, **dict.fromkeys(overrides.PARTS), "updated_at": None}
    return _out(row)


async def put_override(
    session: AsyncSession,
    tenant_id: str,
    name: TemplateName,
    language: Language,
    parts: dict[str, str | None],
    now: datetime,
) -> dict[str, Any]:
    """Check (a 422 naming the part and the line) and save the override."""
    if not any(parts.get(p) for p in overrides.PARTS):
        raise Unprocessable("an override needs at least one of subject, text and html (DELETE removes it)")
    try:
        overrides.validate(parts, templates.sample(name.value, language.value))
    except overrides.Invalid as e:
        raise Unprocessable(
            f"template {name.value} ({language.value}), {e}",
            details=[{"field": e.part, "line": e.line, "message": e.message}],
        ) from None
    values = {p: parts.get(p) or None for p in overrides.PARTS}
    stmt = pg_insert(_OVERRIDES).values(
        tenant_id=tenant_id, name=name.value, language=language.value, updated_at=now, **values
    )
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant_id", "name", "language"], set_={**values, "updated_at": now})
    )
    return {"name": name.value, "language": language.value, **values, "updated_at": now}


async def delete_override(session: AsyncSession, tenant_id: str, name: TemplateName, language: Language) -> None:
    """Back to the built-in template (already there: nothing changes)."""
    await session.execute(
        sa.delete(_OVERRIDES).where(
            _OVERRIDES.c.tenant_id == tenant_id,
            _OVERRIDES.c.name == name.value,
            _OVERRIDES.c.language == language.value,
        )
    )


# -- at compose time ---------------------------------------------------------------------------------
@dataclass
class Wording:
    """A tenant's languages and overrides, loaded once for a pass over many of its people."""

    default: Language
    chosen: dict[str, Language]
    directory: dict[str, str] = field(default_factory=dict)
    _compiled: dict[tuple[str, str], overrides.Compiled | None] = field(default_factory=dict)

    def language(self, employee_id: str) -> str:
        """Their choice, else the directory's when we write in it, else the tenant's default."""
        chosen = self.chosen.get(employee_id)
        if chosen is not None:
            return chosen.value
        return templates.locale_of(self.directory.get(employee_id), self.default.value)

    def override(self, name: str, language: str) -> overrides.Compiled | None:
        return self._compiled.get((name, language))


async def load(session: AsyncSession, tenant_id: str, employee_ids: Iterable[str] | None = None) -> Wording:
    """The tenant's default language, its people's choices and directory languages (those of
    ``employee_ids``, or all), and its overrides compiled (a stored one that fails to compile is
    skipped with a log)."""
    ids = list(employee_ids) if employee_ids is not None else None
    if ids is not None and len(ids) > _MAX_IDS:  # a parameter per id is bounded: the whole tenant then
        ids = None
    query = sa.select(_MEMBER_LANGUAGES.c.employee_id, _MEMBER_LANGUAGES.c.language).where(
        _MEMBER_LANGUAGES.c.tenant_id == tenant_id
    )
    if ids is not None:
        query = query.where(_MEMBER_LANGUAGES.c.employee_id.in_(ids))
    chosen = {r.employee_id: Language(r.language) for r in (await session.execute(query)).all()}
    members = sa.select(col(Member.employee_id), col(Member.directory_language)).where(
        col(Member.tenant_id) == tenant_id, col(Member.directory_language).is_not(None)
    )
    if ids is not None:
        members = members.where(col(Member.employee_id).in_(ids))
    directory = {r.employee_id: str(r.directory_language) for r in (await session.execute(members)).all()}
    wording = Wording(await tenant_language(session, tenant_id), chosen, directory)
    rows = await session.scalars(select(TemplateOverride).where(TemplateOverride.tenant_id == tenant_id))
    for row in rows.all():
        if row.name not in templates.SAMPLES:
            continue
        try:
            compiled = overrides.validate(
                {"subject": row.subject, "text": row.text, "html": row.html},
                templates.sample(row.name, row.language),
            )
        except overrides.Invalid as e:
            log.error(
                "stored template override refused; the built-in template is used",
                extra={"tenant_id": tenant_id, "template": row.name, "language": row.language, "error": str(e)},
            )
            continue
        wording._compiled[(row.name, row.language)] = compiled
    return wording
