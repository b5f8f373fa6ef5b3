"""The summary as CSV, streamed: one line per group as the groups come off the database cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from advocacy_common.csvcells import csv_lines
from advocacy_common.db import one_snapshot
from advocacy_common.tenant import TenantSettings
from advocacy_metrics.adapters import queries
from advocacy_metrics.adapters.ranges import DayRange
from advocacy_metrics.domain import VERDICTS
from advocacy_metrics.domain.measures import Pricing
from advocacy_metrics.features.reports import group_measures, summary_query

KINDS = ("signup", "lead", "sale")
COLUMNS = (
    "group_by",
    "key",
    "shares",
    "reach",
    "clicks",
    *(f"clicks_{v}" for v in VERDICTS),
    "click_through",
    "conversions",
    *(f"conversions_{k}" for k in KINDS),
    "conversion_value",
    "conversion_rate",
    "amplification",
    "earned_media_value",
)
FLUSH_EVERY = 500


def _money(items: list[dict[str, str]] | None) -> str:
    """``12.50 EUR; 3.00 USD`` (empty for none)."""
    return "; ".join(f"{m['amount']} {m['currency']}" for m in items or [])


def _cell(v: Any) -> Any:
    return "" if v is None else v


def csv_row(group_by: str, m: dict[str, Any]) -> list[Any]:
    by_kind = m["conversions_by_kind"]
    return [
        group_by,
        _cell(m["key"]),
        _cell(m["shares"]),
        _cell(m["reach"]),
        m["clicks"],
        *(m["clicks_by_verdict"][v] for v in VERDICTS),
        _cell(m["click_through"]),
        m["conversions"],
        *(by_kind.get(k, 0) for k in KINDS),
        _money(m["conversion_value"]),
        _cell(m["conversion_rate"]),
        _cell(m["amplification"]),
        _money(m["earned_media_value"]),
    ]


async def stream_csv(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: str, group_by: str, days: DayRange, settings: TenantSettings
) -> AsyncIterator[str]:
    """Its own read-only transaction, held while the response streams (the request's is gone by then)."""
    yield csv_lines([list(COLUMNS)])
    q = summary_query(tenant, group_by, days, settings)
    pricing = Pricing.of(settings)
    pending: list[list[Any]] = []
    async with sessionmaker() as session, session.begin():
        await one_snapshot(session)  # a group's conversions and its clicks are two statements
        async for key, g in queries.iter_groups(session, q):
            pending.append(csv_row(group_by, group_measures(key, g, group_by, pricing)))
            if len(pending) >= FLUSH_EVERY:
                yield csv_lines(pending)
                pending = []
    if pending:
        yield csv_lines(pending)
