"""Keeping ``adoption_steps`` (per tenant and day, the net change of each adoption count) in step
with the facts, and reading the counts back from it.

Each person contributes :func:`~advocacy_metrics.domain.adoption.steps` of their share days,
membership history and directory history. When a batch brings a person new rows, the table moves
by ``steps(all their rows) - steps(their rows without the batch's)``: exact whatever order the
rows arrive in. The per-employee advisory lock the consumer holds keeps the read and the write of
one person together; the rebuild holds the tenant. Rows left all-zero are deleted, so the table
equals what :func:`recompute_tenant` makes from the facts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import unnest_select
from advocacy_common.tenant_store import load_tenant_settings
from advocacy_metrics.adapters.aggregates import prune_zero_rows, upsert_add
from advocacy_metrics.db import ADOPTION_STEPS, DIRECTORY_FACTS, MEMBER_FACTS, SHARER_DAYS
from advocacy_metrics.domain import local_day
from advocacy_metrics.domain.adoption import STEP_COLUMNS, History, add_steps, new_share_steps, steps

#: ``aggregate_backfills``' name for this table (migration 0013).
AGGREGATE = "adoption_steps"
KEYS = ("tenant_id", "day")
Person = tuple[str, str]  # tenant, employee
#: A membership or directory record: (updated_at, flag).
Record = tuple[datetime, bool]


@dataclass
class PersonRows:
    """One person's rows that adoption depends on (records in ``updated_at`` order)."""

    share_days: list[date] = field(default_factory=list)
    members: list[Record] = field(default_factory=list)
    directory: list[Record] = field(default_factory=list)

    def histories(self, zone: ZoneInfo) -> tuple[History, History]:
        return (
            [(local_day(at, zone), f) for at, f in self.members],
            [(local_day(at, zone), f) for at, f in self.directory],
        )

    def steps(self, zone: ZoneInfo, week_start_index: int) -> dict[date, list[int]]:
        return steps(self.share_days, *self.histories(zone), week_start_index)


@dataclass
class NewRows:
    """What a batch added: sharer days, membership and directory records, per person."""

    share_days: defaultdict[Person, set[date]] = field(default_factory=lambda: defaultdict(set))
    members: defaultdict[Person, set[datetime]] = field(default_factory=lambda: defaultdict(set))
    directory: defaultdict[Person, set[datetime]] = field(default_factory=lambda: defaultdict(set))

    def people(self) -> set[Person]:
        return set(self.share_days) | set(self.members) | set(self.directory)

    def before(self, who: Person, rows: PersonRows) -> PersonRows:
        """``rows`` without this batch's."""
        days, members, directory = self.share_days.get(who, ()), self.members.get(who, ()), self.directory.get(who, ())
        return PersonRows(
            [d for d in rows.share_days if d not in days],
            [r for r in rows.members if r[0] not in members],
            [r for r in rows.directory if r[0] not in directory],
        )


_PEOPLE = f"({unnest_select(SHARER_DAYS, ('tenant_id', 'employee_id'))}) AS k(tenant_id, employee_id)"
_HISTORIES = sa.text(
    f"SELECT true AS member, f.tenant_id, f.employee_id, f.updated_at, f.enrolled FROM {MEMBER_FACTS.name} f "  # noqa: S608
    f"JOIN {_PEOPLE} ON f.tenant_id = k.tenant_id AND f.employee_id = k.employee_id "
    f"UNION ALL SELECT false, f.tenant_id, f.employee_id, f.updated_at, f.active FROM {DIRECTORY_FACTS.name} f "
    f"JOIN {_PEOPLE} ON f.tenant_id = k.tenant_id AND f.employee_id = k.employee_id "
    "ORDER BY 2, 3, 4"
)
_SHARE_DAYS = sa.text(
    f"SELECT s.tenant_id, s.employee_id, s.day FROM {SHARER_DAYS.name} s JOIN {_PEOPLE} "  # noqa: S608
    "ON s.tenant_id = k.tenant_id AND s.employee_id = k.employee_id"
)


def _people_param(people: Iterable[Person]) -> dict[str, list[str]]:
    pairs = sorted(people)
    return {"tenant_id": [t for t, _ in pairs], "employee_id": [e for _, e in pairs]}


async def read_rows(
    session: AsyncSession, people: set[Person], share_days: dict[Person, list[date]] | None = None
) -> dict[Person, PersonRows]:
    """Every adoption row of ``people``. ``share_days``: the share days already read for some of
    them (the sharer refresh reads them), so only the others' are read here."""
    out = {p: PersonRows() for p in people}
    known = share_days or {}
    for p, days in known.items():
        if p in out:
            out[p].share_days = list(days)
    missing = people - set(known)
    if missing:
        for t, e, day in (await session.execute(_SHARE_DAYS, _people_param(missing))).all():
            out[(t, e)].share_days.append(day)
    for member, t, e, at, flag in (await session.execute(_HISTORIES, _people_param(people))).all():
        rows = out[(t, e)]
        (rows.members if member else rows.directory).append((at, bool(flag)))
    return out


async def apply_steps(session: AsyncSession, changes: dict[tuple[str, date], list[int]]) -> None:
    """Add the per-(tenant, day) changes; rows left all-zero go."""
    rows = [[t, d, *c] for (t, d), c in changes.items() if any(c)]
    await upsert_add(session, ADOPTION_STEPS, KEYS, STEP_COLUMNS, rows)
    await prune_zero_rows(session, ADOPTION_STEPS, KEYS, STEP_COLUMNS, (r[:2] for r in rows))


def _by_tenant_day(changes: dict[str, dict[date, list[int]]]) -> dict[tuple[str, date], list[int]]:
    return {(t, d): c for t, per_day in changes.items() for d, c in per_day.items()}


async def record(
    session: AsyncSession,
    new: NewRows,
    zones: dict[str, ZoneInfo],
    week_starts: dict[str, int],
    share_days: dict[Person, list[date]] | None = None,
) -> None:
    """Move the table by what the batch's new rows change (nothing when it brought none)."""
    people = new.people()
    if not people:
        return
    rows = await read_rows(session, people, share_days)
    changes: dict[str, dict[date, list[int]]] = defaultdict(dict)
    for who in sorted(people):
        tenant = who[0]
        zone, wsi = zones[tenant], week_starts[tenant]
        mine = rows[who]
        if who in new.members or who in new.directory:
            add_steps(changes[tenant], mine.steps(zone, wsi))
            add_steps(changes[tenant], new.before(who, mine).steps(zone, wsi), -1)
        else:  # new share days only (nearly every batch): only their month around matters
            added = new_share_steps(mine.share_days, new.share_days[who], *mine.histories(zone), wsi)
            add_steps(changes[tenant], added)
    await apply_steps(session, _by_tenant_day(changes))


async def erase(session: AsyncSession, tenant: str, employee: str) -> None:
    """Take a person out (before their facts are deleted)."""
    settings = await load_tenant_settings(session, tenant)
    rows = (await read_rows(session, {(tenant, employee)}))[(tenant, employee)]
    changes: dict[date, list[int]] = {}
    add_steps(changes, rows.steps(settings.zone, settings.week_start_index), -1)
    await apply_steps(session, {(tenant, d): c for d, c in changes.items()})


async def recompute_tenant(session: AsyncSession, tenant: str, share_days: dict[str, list[date]] | None = None) -> None:
    """The tenant's rows from its facts (the rebuild's pass; also after a week-start change).
    ``share_days``: every sharer's days, when the caller has them already."""
    settings = await load_tenant_settings(session, tenant)
    zone, wsi = settings.zone, settings.week_start_index
    await session.execute(sa.delete(ADOPTION_STEPS).where(ADOPTION_STEPS.c.tenant_id == tenant))
    people: defaultdict[str, PersonRows] = defaultdict(PersonRows)
    if share_days is None:
        s = SHARER_DAYS
        res = await session.stream(sa.select(s.c.employee_id, s.c.day).where(s.c.tenant_id == tenant))
        async for employee, day in res:
            people[employee].share_days.append(day)
    else:
        for employee, days in share_days.items():
            people[employee].share_days = days
    for table, flag, slot in ((MEMBER_FACTS, "enrolled", "members"), (DIRECTORY_FACTS, "active", "directory")):
        res = await session.stream(
            sa.select(table.c.employee_id, table.c.updated_at, table.c[flag])
            .where(table.c.tenant_id == tenant)
            .order_by(table.c.employee_id, table.c.updated_at)
        )
        async for row in res:
            employee, at, value = list(row)
            getattr(people[employee], slot).append((at, bool(value)))
    total: dict[date, list[int]] = {}
    for rows in people.values():
        add_steps(total, rows.steps(zone, wsi))
    rows_out = [[tenant, d, *c] for d, c in sorted(total.items()) if any(c)]
    for i in range(0, len(rows_out), 5000):
        await upsert_add(session, ADOPTION_STEPS, KEYS, STEP_COLUMNS, rows_out[i : i + 5000])
