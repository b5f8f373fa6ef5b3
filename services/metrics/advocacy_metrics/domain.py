"""Pure aggregation rules: which counters an event moves, on which day and key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from advocacy_common.events.sharing import ShareClicked, ShareCreated

StatKey = tuple[str, date, str, str, str, str]  # tenant, day, employee, content, network, team


@dataclass(frozen=True, slots=True)
class Fact:
    tenant_id: str
    event: ShareCreated | ShareClicked


def stat_key(tenant_id: str, e: ShareCreated | ShareClicked) -> StatKey:
    when = e.created_at if isinstance(e, ShareCreated) else e.clicked_at
    return (tenant_id, when.date(), e.employee_id, e.content_id, e.network, e.team or "")


def deltas(facts: Iterable[Fact]) -> dict[StatKey, dict[str, int]]:
    """Sum of counter increments per aggregate row for new (deduplicated) facts."""
    out: dict[StatKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for f in facts:
        e = f.event
        row = out[stat_key(f.tenant_id, e)]
        if isinstance(e, ShareCreated):
            row["shares"] += 1
            row["reach"] += e.audience_size
        else:
            row[f"clicks_{e.verdict.value}"] += 1
    return out
