"""Quiet hours: local hours (the tenant's time zone) in which nobody is written to. A person's own
(``PUT /v1/notifications/quiet-hours``), else the tenant's default (``PUT /v1/notifications/defaults``).

Applied in one place: :func:`advocacy_notifications.features.mail.queue` sets every queued message's
first delivery time to :func:`advocacy_notifications.domain.delivery_time` through
:class:`TenantQuiet`, so digests, notices and nudges all wait for the morning alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.db import table_of
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_notifications import db, domain
from advocacy_notifications.db import QuietHoursRow
from advocacy_notifications.domain import QuietHours

_QUIET = table_of(QuietHoursRow)


def _hours(start: int | None, end: int | None) -> QuietHours | None:
    return QuietHours(start, end) if start is not None and end is not None else None


@dataclass(frozen=True, slots=True)
class TenantQuiet:
    """A tenant's quiet hours, loaded once for a pass: its time zone, its default, and the people
    who chose their own (``None``: none at all)."""

    zone: str
    default: QuietHours | None = None
    personal: dict[str, QuietHours | None] = field(default_factory=dict)

    def of(self, employee_id: str) -> QuietHours | None:
        return self.personal.get(employee_id, self.default)

    def delivery_time(self, employee_id: str, composed_at: datetime) -> datetime:
        return domain.delivery_time(composed_at, zone=self.zone, quiet=self.of(employee_id))


async def load(session: AsyncSession, tenant_id: str, employee_ids: list[str] | None = None) -> TenantQuiet:
    """The tenant's quiet hours; ``employee_ids``: only those people's own (a single notice)."""
    settings = await load_tenant_settings(session, tenant_id)
    default = (await db.load_defaults(session, tenant_id)).quiet_hours
    q = sa.select(_QUIET.c.employee_id, _QUIET.c.start_hour, _QUIET.c.end_hour).where(_QUIET.c.tenant_id == tenant_id)
    if employee_ids is not None:
        q = q.where(_QUIET.c.employee_id.in_(employee_ids))
    personal = {r.employee_id: _hours(r.start_hour, r.end_hour) for r in (await session.execute(q)).all()}
    return TenantQuiet(zone=settings.time_zone, default=default, personal=personal)


async def mine(session: AsyncSession, tenant_id: str, employee_id: str) -> tuple[QuietHours | None, bool]:
    """The quiet hours that apply to the person, and whether they chose them (False: the tenant's)."""
    quiet = await load(session, tenant_id, [employee_id])
    return quiet.of(employee_id), employee_id in quiet.personal


async def choose(session: AsyncSession, tenant_id: str, employee_id: str, hours: QuietHours | None) -> None:
    """The person's own quiet hours; ``None``: none, whatever the tenant's default."""
    stmt = pg_insert(_QUIET).values(
        tenant_id=tenant_id,
        employee_id=employee_id,
        start_hour=hours.start if hours else None,
        end_hour=hours.end if hours else None,
        updated_at=datetime.now(UTC),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id"],
            set_={k: stmt.excluded[k] for k in ("start_hour", "end_hour", "updated_at")},
        )
    )


async def clear(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Back to the tenant's default."""
    await session.execute(sa.delete(_QUIET).where(_QUIET.c.tenant_id == tenant_id, _QUIET.c.employee_id == employee_id))
