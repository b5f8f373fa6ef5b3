"""The weekly programme report to admins (issue 18, ADR 0017): metrics composes the figures and
publishes ``report.weekly``; this writes them to each admin of the tenant.

- **Who is an admin.** The role lives in tokens, not in any event: an admin is recorded
  (``report_admins``) whenever their token (role ``admin``, verified like every token) reaches this
  service's API (:func:`note_admin`: reading or changing their preferences, the tenant's defaults).
  The report goes to the admins seen within :data:`domain.ADMIN_SEEN_WITHIN` who have an address in the
  directory copy, are active, are not suppressed, and for whom ``report`` is on (their choice, else
  the tenant's default for the category, else on). Enrolment is not asked: an admin need not share.
- **Whom the tenant lists.** An admin who never opened this API is not seen, so the tenant may also
  list recipients (:func:`set_listed`, ``PUT /v1/notifications/defaults/report-recipients``, at
  most :data:`domain.MAX_REPORT_RECIPIENTS`): each listed person gets the report on the same conditions (address,
  active, not bounced, ``report`` on), whatever their role and whether they were seen.
- **Once per admin and week.** The consumer keeps the report (``report_copies``, one row per
  tenant and week: a redelivered or re-published event changes nothing); a worker pass
  (:func:`compose_pending`, clock passed in) queues one message per admin with the dedupe key
  ``report:<admin>:<week start>``, then clears the copy's figures and marks it composed.
- **Figures are metrics'.** Nothing is computed here but the presentation (the change from the
  week before, :func:`domain.change`); names and titles come from this service's copies (the id
  when it has none).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.auth import Principal
from advocacy_common.db import table_of
from advocacy_common.errors import Unprocessable
from advocacy_common.events import Envelope
from advocacy_common.events.metrics import Week, WeeklyReportComposed
from advocacy_notifications import domain
from advocacy_notifications.adapters import templates
from advocacy_notifications.adapters.links import LINK_KEY
from advocacy_notifications.db import ContentCopy, Member, ReportAdmin, ReportCopy
from advocacy_notifications.domain import Category
from advocacy_notifications.features import digests, mail, nudges, wording

_ADMINS = table_of(ReportAdmin)
_COPIES = table_of(ReportCopy)

# An admin's ``seen_at`` moves at most this often.
NOTED_EVERY = timedelta(days=1)
# Reports composed per pass at most (each is a handful of messages); the rest wait for the next.
PASS_LIMIT = 100


async def note_admin(session: AsyncSession, who: Principal, now: datetime) -> None:
    """Record the caller as one of the tenant's admins when their token says so."""
    if not who.is_admin:
        return
    stmt = pg_insert(_ADMINS).values(tenant_id=who.tenant_id, employee_id=who.sub, seen_at=now)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={"seen_at": stmt.excluded.seen_at},
            # a day's precision is plenty for a 90-day window: no write on every call
            where=_ADMINS.c.seen_at.is_(None) | (_ADMINS.c.seen_at < stmt.excluded.seen_at - NOTED_EVERY),
        )
    )


async def listed(session: AsyncSession, tenant_id: str) -> list[str]:
    """The people the tenant listed as recipients of the report, by employee id."""
    rows = await session.execute(
        sa.select(_ADMINS.c.employee_id)
        .where(_ADMINS.c.tenant_id == tenant_id, _ADMINS.c.listed_at.is_not(None))
        .order_by(_ADMINS.c.employee_id)
    )
    return list(rows.scalars().all())


async def set_listed(session: AsyncSession, tenant_id: str, employee_ids: Sequence[str], now: datetime) -> list[str]:
    """Replace the tenant's list of report recipients (ids of people; one unknown yet is kept and
    written to once its directory record arrives). The admins seen by their tokens stay recipients."""
    wanted = sorted(set(employee_ids))
    if len(wanted) > domain.MAX_REPORT_RECIPIENTS:
        raise Unprocessable(
            f"at most {domain.MAX_REPORT_RECIPIENTS} report recipients may be listed, not {len(wanted)}"
        )
    await session.execute(
        sa.update(_ADMINS)
        .where(
            _ADMINS.c.tenant_id == tenant_id,
            _ADMINS.c.listed_at.is_not(None),
            _ADMINS.c.employee_id.not_in(wanted),
        )
        .values(listed_at=None)
    )
    if wanted:
        stmt = pg_insert(_ADMINS).values([{"tenant_id": tenant_id, "employee_id": e, "listed_at": now} for e in wanted])
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "employee_id"],
                set_={"listed_at": sa.func.coalesce(_ADMINS.c.listed_at, stmt.excluded.listed_at)},
            )
        )
    return wanted


async def keep_report(session: AsyncSession, env: Envelope[WeeklyReportComposed]) -> None:
    """The consumer's part: keep the report until it is mailed (once per tenant and week)."""
    d = env.data
    await session.execute(
        pg_insert(_COPIES)
        .values(
            tenant_id=env.tenant_id,
            week_start=d.week.start,
            report=d.model_dump(mode="json"),
            received_at=env.time,
        )
        .on_conflict_do_nothing()
    )


async def recipients(session: AsyncSession, tenant_id: str, now: datetime) -> list[Member]:
    """The admins and listed people the tenant's report goes to (see the module's docstring)."""
    admins = sa.select(_ADMINS.c.employee_id).where(
        _ADMINS.c.tenant_id == tenant_id,
        (_ADMINS.c.seen_at >= now - domain.ADMIN_SEEN_WITHIN) | _ADMINS.c.listed_at.is_not(None),
    )
    people = (
        await session.scalars(
            select(Member)
            .where(
                Member.tenant_id == tenant_id,
                col(Member.employee_id).in_(admins),
                col(Member.email).is_not(None),
                col(Member.active),
                # their choice for the report, else the tenant's default for it, else on
                nudges.wants(Category.report),
            )
            .order_by(col(Member.employee_id))
        )
    ).all()
    bounced = await mail.suppressed(session, tenant_id)
    return [m for m in people if m.email not in bounced]


async def compose_pending(session: AsyncSession, now: datetime, *, base_url: str, limit: int = PASS_LIMIT) -> int:
    """Queue the messages of the reports received and not yet composed (at most ``limit`` reports,
    the oldest first; the rest wait for the next pass). Returns how many messages were queued."""
    copies = (
        await session.scalars(
            select(ReportCopy)
            .where(col(ReportCopy.composed_at).is_(None))
            .order_by(col(ReportCopy.received_at))
            .limit(min(limit, PASS_LIMIT))
            .with_for_update(skip_locked=True)
        )
    ).all()
    queued = 0
    for copy in copies:
        if copy.report is not None:
            report = WeeklyReportComposed.model_validate(copy.report)
            queued += await _compose(session, copy.tenant_id, report, now, base_url=base_url)
        copy.report = None  # the figures are in the messages now; the row stays as the mark
        copy.composed_at = now
    return queued


async def _compose(
    session: AsyncSession, tenant_id: str, report: WeeklyReportComposed, now: datetime, *, base_url: str
) -> int:
    admins = await recipients(session, tenant_id, now)
    if not admins:
        return 0
    context = await report_context(session, tenant_id, report)
    key = await LINK_KEY.get(session)
    words = await wording.load(session, tenant_id, [m.employee_id for m in admins])
    queued = 0
    for m in admins:
        assert m.email is not None
        unsubscribe = digests.unsubscribe_url(base_url, key, tenant_id, m.employee_id, Category.report)
        # the admin's language (English until the report has a translation), the tenant's wording
        language = words.language(m.employee_id)
        parts = templates.render(
            "report",
            {**context, "name": m.name, "unsubscribe_url": unsubscribe},
            language,
            words.override("report", language),
        )
        if await mail.queue(
            session,
            tenant_id=tenant_id,
            employee_id=m.employee_id,
            dedupe_key=domain.report_key(m.employee_id, report.week.start),
            category=Category.report.value,
            recipient=m.email,
            subject=parts.subject,
            text=parts.text,
            html=parts.html,
            # RFC 2369 and RFC 8058, as the digest: the admin may stop the report without logging in
            headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            now=now,
        ):
            queued += 1
    return queued


async def report_context(session: AsyncSession, tenant_id: str, report: WeeklyReportComposed) -> dict[str, Any]:
    """What the templates show: the figures with their change, top lists with names and titles."""
    week, previous = report.week, report.previous
    content_ids = [r.key for r in week.top_content]
    employee_ids = [r.key for r in week.top_advocates]
    titles: dict[str, str] = {
        k: v
        for k, v in (
            await session.execute(
                sa.select(col(ContentCopy.content_id), col(ContentCopy.title)).where(
                    col(ContentCopy.tenant_id) == tenant_id, col(ContentCopy.content_id).in_(content_ids)
                )
            )
        ).all()
    }
    names: dict[str, str | None] = {
        k: v
        for k, v in (
            await session.execute(
                sa.select(col(Member.employee_id), col(Member.name)).where(
                    col(Member.tenant_id) == tenant_id, col(Member.employee_id).in_(employee_ids)
                )
            )
        ).all()
    }
    return {
        "time_zone": report.time_zone,
        # the first moments of the days, in the tenant's zone: the ``date`` filter shows them there
        "start": datetime.combine(week.start, time(), ZoneInfo(report.time_zone)),
        "end": datetime.combine(week.end, time(), ZoneInfo(report.time_zone)),
        "figures": _figures(week, previous),
        "adoption": {
            "sharers": week.adoption.sharers,
            "eligible": week.adoption.eligible,
            "rate": domain.percent(week.adoption.share_rate),
            "previous_sharers": previous.adoption.sharers,
            "previous_eligible": previous.adoption.eligible,
            "change": _change(week.adoption.sharers, previous.adoption.sharers),
        },
        "top_content": [{**r.model_dump(), "label": titles.get(r.key) or r.key} for r in week.top_content],
        "top_advocates": [{**r.model_dump(), "label": names.get(r.key) or r.key} for r in week.top_advocates],
    }


def _change(value: int, previous: int) -> dict[str, Any]:
    """Week over week as the templates (and a tenant's override of them) read it: plain values."""
    return dataclasses.asdict(domain.change(value, previous))


def _figures(week: Week, previous: Week) -> list[dict[str, Any]]:
    return [
        {
            "key": field,
            "value": getattr(week.totals, field),
            "previous": getattr(previous.totals, field),
            "change": _change(getattr(week.totals, field), getattr(previous.totals, field)),
        }
        for field in domain.REPORT_FIGURES
    ]
