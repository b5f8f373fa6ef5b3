"""Roll-out waves: named sets of teams or employees, each with a start date. The board opens for
a person with the first wave that includes them (no waves at all: open to everyone)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from advocacy_common.auth.principal import Principal
from advocacy_common.errors import NotFound, Unprocessable
from advocacy_common.events.content import WaveUpdated
from advocacy_common.pagination import PageParams, as_str, as_time, encode_cursor, parse_cursor
from advocacy_content import domain
from advocacy_content.adapters.events import emit, now
from advocacy_content.db import Wave
from advocacy_content.schemas import WaveCreate, WavePatch, WavePublic


def to_public(w: Wave, at: datetime | None = None) -> WavePublic:
    return WavePublic(
        id=w.id,
        name=w.name,
        starts_at=w.starts_at,
        teams=list(w.teams),
        employees=list(w.employees),
        started=w.starts_at <= (at or now()),
        created_by=w.created_by,
        created_at=w.created_at,
        updated_at=w.updated_at,
    )


async def wave_views(session: AsyncSession, tenant_id: str) -> list[domain.WaveView]:
    rows = (await session.scalars(select(Wave).where(Wave.tenant_id == tenant_id))).all()
    return [
        domain.WaveView(
            id=w.id, name=w.name, starts_at=w.starts_at, teams=frozenset(w.teams), employees=frozenset(w.employees)
        )
        for w in rows
    ]


def wave_event(w: Wave, at: datetime, *, deleted: bool = False) -> WaveUpdated:
    return WaveUpdated(
        wave_id=w.id,
        name=w.name,
        starts_at=w.starts_at,
        teams=list(w.teams),
        employees=list(w.employees),
        deleted=deleted,
        updated_at=at,
    )


async def _announce(session: AsyncSession, w: Wave, *, deleted: bool = False) -> None:
    """Sharing keeps a copy of the waves: it refuses shares the board would not show."""
    at = now()
    await emit(session, w.tenant_id, wave_event(w, at, deleted=deleted), at)


def _check_members(teams: list[str], employees: list[str]) -> None:
    if not teams and not employees:
        raise Unprocessable.field("teams", "a wave needs at least one team or employee")


async def create_wave(session: AsyncSession, who: Principal, body: WaveCreate) -> Wave:
    _check_members(body.teams, body.employees)
    at = now()
    w = Wave(
        id=str(uuid.uuid4()),
        tenant_id=who.tenant_id,
        name=body.name.strip(),
        starts_at=body.starts_at,
        teams=list(dict.fromkeys(body.teams)),
        employees=list(dict.fromkeys(body.employees)),
        created_by=who.sub,
        created_at=at,
        updated_at=at,
    )
    session.add(w)
    await session.flush()
    await _announce(session, w)
    return w


async def load_wave(session: AsyncSession, tenant_id: str, wave_id: str, *, for_update: bool = False) -> Wave:
    w = await session.get(Wave, wave_id, with_for_update=for_update)
    if w is None or w.tenant_id != tenant_id:
        raise NotFound("wave not found")
    return w


async def patch_wave(session: AsyncSession, who: Principal, wave_id: str, body: WavePatch) -> Wave:
    w = await load_wave(session, who.tenant_id, wave_id, for_update=True)
    sent = body.model_fields_set
    for name in ("name", "starts_at", "teams", "employees"):
        if name in sent:
            value = getattr(body, name)
            if value is None:
                raise Unprocessable.field(name, "cannot be null")
            setattr(w, name, list(dict.fromkeys(value)) if isinstance(value, list) else value)
    _check_members(w.teams, w.employees)
    w.updated_at = now()
    await session.flush()
    await _announce(session, w)
    return w


async def delete_wave(session: AsyncSession, who: Principal, wave_id: str) -> None:
    w = await load_wave(session, who.tenant_id, wave_id, for_update=True)
    await _announce(session, w, deleted=True)
    await session.delete(w)
    await session.flush()


async def list_waves(session: AsyncSession, who: Principal, page: PageParams) -> tuple[list[Wave], str | None]:
    stmt = select(Wave).where(Wave.tenant_id == who.tenant_id)
    if page.cursor:
        ts, wid = parse_cursor(page.cursor, as_time, as_str)
        stmt = stmt.where((col(Wave.starts_at) > ts) | ((col(Wave.starts_at) == ts) & (col(Wave.id) > wid)))
    stmt = stmt.order_by(col(Wave.starts_at), col(Wave.id)).limit(page.limit + 1)
    rows = list((await session.scalars(stmt)).all())
    cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        cursor = encode_cursor([rows[-1].starts_at.isoformat(), rows[-1].id])
    return rows, cursor
