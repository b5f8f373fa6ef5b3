"""The weekly programme report's rules (pure): which week is due, and how a top list is ranked.

A tenant's report covers its last complete week (the tenant's first day of the week to the day
before the next one, days in its time zone) and the week before it, for week-over-week figures. It
becomes due at :data:`REPORT_HOUR` local time on the first day of the next week, not at midnight:
the consumers' lag (clicks of Sunday evening, conversions reported late) has drained by then, and
the admins read it when their week starts. No clock here: ``now`` is passed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from advocacy_metrics.domain import week_start

#: Local hour on the first day of the week from which the report of the week that ended is due.
REPORT_HOUR = 6

# Report ids are UUIDv5 in this namespace of (tenant, week start): the same report has the same id,
# and so the same CloudEvents id, however often it is composed or published.
_NAMESPACE = uuid.UUID("5d1c3f0e-8a77-4a43-9c1b-6f2d8e0b7a51")


def due_week(now: datetime, zone: ZoneInfo, week_start_index: int) -> tuple[date, date]:
    """The first and last day of the latest week whose report is due at ``now``."""
    local = now.astimezone(zone)
    this_week = week_start(local.date(), week_start_index)
    if local.date() == this_week and local.hour < REPORT_HOUR:
        this_week -= timedelta(days=7)  # the week that just ended is not due yet
    return this_week - timedelta(days=7), this_week - timedelta(days=1)


def previous_week(start: date) -> tuple[date, date]:
    return start - timedelta(days=7), start - timedelta(days=1)


def report_id(tenant_id: str, start: date) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}\x00{start.isoformat()}"))


def rank(measures: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Sort key of a top list entry (smaller first): counted clicks, then shares, then conversions,
    then reach, each descending. Ties keep the groups' key order (the caller's stable sort)."""
    return (
        -int(measures["clicks"] or 0),
        -int(measures["shares"] or 0),
        -int(measures["conversions"] or 0),
        -int(measures["reach"] or 0),
    )
