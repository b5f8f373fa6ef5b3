"""Use cases for a tenant's rules: read, add a version, simulate a proposal on the current window."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common import audit
from advocacy_common.db import one_snapshot
from advocacy_common.errors import Unprocessable
from advocacy_common.pagination import PageParams, as_offset, encode_cursor, parse_cursor
from advocacy_gamification import domain
from advocacy_gamification.adapters.context import load_context
from advocacy_gamification.db import LEDGER, MEMBERS, RULE_SETS, TOTALS
from advocacy_gamification.domain.rules import AwardFact, RulesBody, RulesIn, RuleVersion, score
from advocacy_gamification.features.leaderboard import display

# A version may start a little in the past (clock skew, a slow request), never retroactively.
PAST_LEEWAY = timedelta(seconds=60)


def version_out(v: RuleVersion) -> dict[str, Any]:
    return {"version": v.version, "effective_at": v.effective_at, **v.body.model_dump(mode="json")}


async def current(session: AsyncSession, tenant_id: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    ctx = await load_context(session, tenant_id)
    v = ctx.rules_at(now)
    scheduled = [version_out(s) for s in ctx.versions if s.effective_at is not None and s.effective_at > now]
    return {**version_out(v), "scheduled": scheduled}


def _lock_key(tenant_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"gamification-rules:{tenant_id}".encode()).digest()[:8], "big", signed=True)


async def put(
    session: AsyncSession, tenant_id: str, by: str, body: RulesIn, now: datetime | None = None
) -> dict[str, Any]:
    """A new version, in effect from ``effective_at`` (now if omitted); earlier events keep theirs."""
    now = now or datetime.now(UTC)
    effective_at = body.effective_at or now
    if effective_at < now - PAST_LEEWAY:
        raise Unprocessable.field("effective_at", "cannot be in the past: a rule change is never retroactive")
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(tenant_id))))
    latest = await session.scalar(sa.select(sa.func.max(RULE_SETS.c.version)).where(RULE_SETS.c.tenant_id == tenant_id))
    version = int(latest or 0) + 1
    rules = body.body()
    await session.execute(
        sa.insert(RULE_SETS).values(
            tenant_id=tenant_id,
            version=version,
            effective_at=effective_at,
            body=rules.model_dump(mode="json"),
            created_by=by,
        )
    )
    after = {"version": version, "effective_at": effective_at.isoformat(), "body": rules.model_dump(mode="json")}
    await audit.record(session, tenant_id, by, "rules.updated", target=str(version), after=after, at=now)
    return version_out(RuleVersion(version, effective_at, rules))


async def _credited_before(
    session: AsyncSession, tenant_id: str, facts: list[AwardFact], before: datetime
) -> set[tuple[str, str, str]]:
    """(employee, action, content) of the window's shares already credited before the window: a
    proposal crediting shares once per content item does not credit them again."""
    keys = sorted({(f.employee_id, f.action, f.content_id) for f in facts if f.action == "share" and f.content_id})
    rev = LEDGER.alias("rev")
    found: set[tuple[str, str, str]] = set()
    for start in range(0, len(keys), 1000):
        rows = await session.execute(
            sa.select(LEDGER.c.employee_id, LEDGER.c.action, LEDGER.c.content_id)
            .where(
                LEDGER.c.tenant_id == tenant_id,
                sa.tuple_(LEDGER.c.employee_id, LEDGER.c.action, LEDGER.c.content_id).in_(keys[start : start + 1000]),
                LEDGER.c.entry_type == "award",
                LEDGER.c.points > 0,
                LEDGER.c.occurred_at < before,
                ~sa.exists().where(rev.c.reverses_id == LEDGER.c.id),
            )
            .distinct()
        )
        found.update((r[0], r[1], r[2]) for r in rows.all())
    return found


async def simulate(
    session: AsyncSession,
    tenant_id: str,
    proposal: RulesBody,
    window: str,
    team: str | None,
    page: PageParams,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The current window's board if ``proposal`` had been in effect for every award in it (caps
    and multipliers included; reversed awards still take their place under a cap). Writes nothing.
    The ledger and the current totals are read from one snapshot, so the rules in effect simulate
    the current board exactly even while a consumer batch commits."""
    await one_snapshot(session)
    now = now or datetime.now(UTC)
    ctx = await load_context(session, tenant_id)
    span = ctx.current_window(window, now)
    rev = LEDGER.alias("rev")
    q = sa.select(
        LEDGER.c.employee_id,
        LEDGER.c.action,
        LEDGER.c.detail,
        LEDGER.c.content_id,
        LEDGER.c.occurred_at,
        sa.exists().where(rev.c.reverses_id == LEDGER.c.id).label("reversed"),
    ).where(LEDGER.c.tenant_id == tenant_id, LEDGER.c.entry_type == "award")
    if span.starts_at is not None:
        q = q.where(LEDGER.c.occurred_at >= span.starts_at)
    if span.ends_at is not None:
        q = q.where(LEDGER.c.occurred_at < span.ends_at)
    facts = [
        AwardFact(r.employee_id, r.action, r.detail, r.content_id, r.occurred_at, r.reversed)
        for r in await session.execute(q)
    ]
    credited = await _credited_before(session, tenant_id, facts, span.starts_at) if span.starts_at else set()
    simulated = score(facts, proposal, ctx.settings.zone, credited)
    current_rows = await session.execute(
        sa.select(TOTALS.c.employee_id, TOTALS.c.points).where(
            TOTALS.c.tenant_id == tenant_id,
            TOTALS.c.window == window,
            TOTALS.c.window_start == span.start,
        )
    )
    current_points = {r.employee_id: int(r.points) for r in current_rows}
    people = sorted(set(simulated) | set(current_points))
    info = {}
    for chunk in (people[i : i + 5000] for i in range(0, len(people), 5000)):
        rows = await session.execute(
            sa.select(
                MEMBERS.c.employee_id, MEMBERS.c.name, MEMBERS.c.team, MEMBERS.c.enrolled, MEMBERS.c.visibility
            ).where(MEMBERS.c.tenant_id == tenant_id, MEMBERS.c.employee_id.in_(chunk))
        )
        info.update({r.employee_id: r for r in rows})

    def listed(emp: str) -> bool:
        m = info.get(emp)
        if m is not None and not domain.is_ranked(m.enrolled, m.visibility):
            return False
        return team is None or (m is not None and m.team == team)

    sim_ranked = domain.ranked_rows([(e, simulated.get(e, 0)) for e in people if listed(e)])
    cur_rank = {e: r for e, _, r in domain.ranked_rows([(e, p) for e, p in current_points.items() if listed(e)])}
    offset = 0
    if page.cursor:
        (offset,) = parse_cursor(page.cursor, as_offset)
    items = []
    for emp, pts, rank in sim_ranked[offset : offset + page.limit]:
        m = info.get(emp)
        items.append(
            {
                "rank": rank,
                **display(emp, m.name if m else None, m.team if m else None, m.visibility if m else None),
                "points": pts,
                "current_points": current_points.get(emp, 0),
                "current_rank": cur_rank.get(emp),
            }
        )
    return {
        "window": window,
        "starts_at": span.starts_at,
        "ends_at": span.ends_at,
        "items": items,
        "next_cursor": encode_cursor([offset + page.limit]) if offset + page.limit < len(sim_ranked) else None,
    }
