"""What a use case needs to know about a tenant: its settings copy (time zone, week start) and its
rule versions. Loaded per batch or request, for many tenants in one query."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.caches import SizedLRU
from advocacy_common.tenant import DEFAULT_SETTINGS, TenantSettings
from advocacy_common.tenant_store import TENANT_SETTINGS
from advocacy_gamification import domain
from advocacy_gamification.db import RULE_SETS
from advocacy_gamification.domain.rules import DEFAULT_VERSION, RulesBody, RuleVersion, version_at


@dataclass(frozen=True)
class TenantContext:
    tenant_id: str
    settings: TenantSettings = field(default_factory=lambda: DEFAULT_SETTINGS)
    versions: tuple[RuleVersion, ...] = field(default_factory=tuple)

    @property
    def week_starts_on(self) -> int:
        return self.settings.week_start_index

    def rules_at(self, at: datetime) -> RuleVersion:
        return version_at(self.versions, at)

    def windows_for(self, at: datetime) -> list[tuple[str, Any]]:
        return domain.windows_for(at, self.settings.zone, self.week_starts_on)

    def current_window(self, window: str, now: datetime) -> domain.WindowSpan:
        return domain.current_window(window, now, self.settings.zone, self.week_starts_on)

    def latest_version(self) -> RuleVersion:
        """The highest version (possibly not yet in effect)."""
        return max(self.versions, key=lambda v: v.version, default=DEFAULT_VERSION)


# Parsed rule sets by their JSON. A parsed body holds about 2.4x its JSON (tracemalloc, CPython
# 3.11: a 977 KB body of 50 multipliers x 500 content ids parses to 2.36 MB; an empty one to 448
# bytes), so an entry costs its key + 2.5x it + 1 KiB. 32 MiB keeps thousands of ordinary rule sets.
_BODIES: SizedLRU[bytes, RulesBody] = SizedLRU(32 * 1024 * 1024, lambda raw, _: len(raw) * 7 // 2 + 1024)


def parse_body(body: dict[str, Any]) -> RulesBody:
    raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    parsed = _BODIES.get(raw)
    if parsed is None:
        parsed = RulesBody.model_validate_json(raw)
        _BODIES.put(raw, parsed)
    return parsed


async def load_contexts(session: AsyncSession, tenant_ids: Iterable[str]) -> dict[str, TenantContext]:
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    settings: dict[str, TenantSettings] = {}
    rows = await session.execute(
        sa.select(TENANT_SETTINGS.c.tenant_id, TENANT_SETTINGS.c.settings).where(TENANT_SETTINGS.c.tenant_id.in_(ids))
    )
    for tid, raw in rows.all():
        settings[tid] = TenantSettings.model_validate(raw)
    versions: dict[str, list[RuleVersion]] = {t: [] for t in ids}
    vrows = await session.execute(
        sa.select(RULE_SETS.c.tenant_id, RULE_SETS.c.version, RULE_SETS.c.effective_at, RULE_SETS.c.body).where(
            RULE_SETS.c.tenant_id.in_(ids)
        )
    )
    for tid, version, effective_at, body in vrows.all():
        versions[tid].append(RuleVersion(version, effective_at, parse_body(body)))
    return {
        t: TenantContext(t, settings.get(t, DEFAULT_SETTINGS), tuple(sorted(versions[t], key=lambda v: v.version)))
        for t in ids
    }


async def load_context(session: AsyncSession, tenant_id: str) -> TenantContext:
    return (await load_contexts(session, [tenant_id]))[tenant_id]


# Boards need only the calendar (time zone, week start), and they are read far more often than it
# changes: API processes keep it a few seconds. (Consumers always load it fresh.)
CALENDAR_TTL = 5.0
_calendars: dict[str, tuple[float, TenantContext]] = {}


async def calendar(session: AsyncSession, tenant_id: str, ttl: float = CALENDAR_TTL) -> TenantContext:
    """The tenant's settings (no rule versions), cached for ``ttl`` seconds in this process."""
    now = time.monotonic()
    hit = _calendars.get(tenant_id)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    raw = await session.scalar(sa.select(TENANT_SETTINGS.c.settings).where(TENANT_SETTINGS.c.tenant_id == tenant_id))
    ctx = TenantContext(tenant_id, TenantSettings.model_validate(raw) if raw else DEFAULT_SETTINGS)
    if len(_calendars) > 10_000:
        _calendars.clear()
    _calendars[tenant_id] = (now, ctx)
    return ctx
