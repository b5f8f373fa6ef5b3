"""Events in -> ledger entries: awards under the rule version in effect when the event occurred,
daily caps per employee and action (tenant's day), reversals of invalidated clicks, membership,
the directory, erasure, tenant settings. One consumed batch is one transaction (the consumer runner's).

A person the directory has deactivated earns nothing: their clicks (links keep answering), late
conversions and anything else are scored here at 0 points with the reason ``member_inactive``.
This is the one place that decides it, because points exist only here: sharing's verdict stays what
the visitor did (a counted click is still a real visit, for content's metrics), and gamification is
the service that already keeps the directory's flag for its boards. The ledger keeps the 0-point
entries, so an admin can see what an inactive person's links still brought in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import insert_rows, rows_param, rows_select
from advocacy_common.events import Envelope
from advocacy_common.events.base import twin
from advocacy_common.events.content import (
    MemberErased,
    MemberProvisioned,
    MemberUpdated,
    SuggestionApproved,
    TeamUpdated,
    TenantSettingsUpdated,
)
from advocacy_common.events.sharing import (
    ClickInvalidated,
    ConversionRecorded,
    ShareClicked,
    ShareCreated,
    Verdict,
    click_event_id,
)
from advocacy_common.tenant_store import apply_tenant_settings
from advocacy_gamification.adapters.context import TenantContext, load_contexts
from advocacy_gamification.adapters.ledger import NewEntry, post, rebuild_windows, reverse, unreversed_awards
from advocacy_gamification.db import DAILY_COUNTS, LEDGER
from advocacy_gamification.domain.rules import DEFAULT_VERSION, RuleVersion
from advocacy_gamification.features import badges, members

#: The types gamification applies without an inbox claim (``ConsumerSpec.keyed_types``,
#: docs/adr/0022-gamification-clicks-skip-the-inbox.md): a counted click's award is keyed by the click's
#: event id (sharing's :func:`click_event_id`) on the ledger's unique (tenant, event id, rule version),
#: and :func:`fresh_facts` drops a click the ledger already holds before anything is counted.
KEYED_TYPES = frozenset({ShareClicked.TYPE})
#: The types the handler takes as light data (``ConsumerSpec.light_types``,
#: docs/adr/0037-light-data-for-read-only-hot-types.md): a click's fields are only read, so it may
#: arrive as the frozen msgspec twin of ``ShareClicked`` (``_CLICK_LIGHT``) or as the model.
LIGHT_TYPES = frozenset({ShareClicked.TYPE})
_CLICK_LIGHT = twin(ShareClicked)

_CAP_COLUMNS = ("tenant_id", "employee_id", "action", "day", "count")
# the cap rows of a batch's keyed facts, locked (a no-op update) before the ledger is asked which of
# them it holds: a second transaction applying the same click waits here and then sees the first's award
_LOCK_CAPS = insert_rows(
    DAILY_COUNTS,
    _CAP_COLUMNS,
    "ON CONFLICT (tenant_id, employee_id, action, day) DO UPDATE SET count = t.count",
)
# which of the batch's (tenant, event id) pairs the ledger holds under any rule version: one statement
# (the pairs as one JSON array, bulk.rows_select), each pair an EXISTS probe on the prefix of
# ``uq_ledger_event_rule``
_HELD = sa.text(
    f"SELECT k.tenant_id, k.event_id FROM ({rows_select(LEDGER, ('tenant_id', 'event_id'))}) AS k "  # noqa: S608
    "WHERE EXISTS (SELECT FROM ledger l WHERE l.tenant_id = k.tenant_id AND l.event_id = k.event_id)"
)
_COUNT_CAPPED = insert_rows(
    DAILY_COUNTS,
    _CAP_COLUMNS,
    "ON CONFLICT (tenant_id, employee_id, action, day) DO UPDATE SET count = t.count + excluded.count "
    "RETURNING t.tenant_id, t.employee_id, t.action, t.day, t.count",
)


# Not frozen (as ledger.NewEntry): a frozen dataclass's ``__init__`` sets each field through
# ``object.__setattr__``, and a consumed batch builds one fact per click (1.5 us frozen, 0.3 us not).
# Nothing hashes a fact or changes one after it is built: they are told apart by position.
@dataclass(slots=True)
class Fact:
    """An award-worthy event, before rules: who, what, when, about which content."""

    tenant_id: str
    employee_id: str
    event_id: str
    action: str
    detail: str | None
    ref: str
    content_id: str | None
    occurred_at: Any
    #: its event's type is in :data:`KEYED_TYPES` (no inbox claim: :func:`fresh_facts` drops its copies)
    keyed: bool = False


def fact_of(env: Envelope[Any]) -> Fact | None:
    d = env.data
    t = env.tenant_id
    kind = type(d)  # the event models are final; ``isinstance`` on a pydantic model goes through ABCMeta
    keyed = kind.TYPE in KEYED_TYPES
    if kind is _CLICK_LIGHT or kind is ShareClicked:
        if d.verdict is not Verdict.counted:
            return None
        return Fact(t, d.employee_id, env.id, "click", None, d.click_id, d.content_id, d.clicked_at, keyed)
    if kind is ShareCreated:
        return Fact(t, d.employee_id, env.id, "share", None, d.share_id, d.content_id, d.created_at, keyed)
    if kind is ConversionRecorded:
        return Fact(t, d.employee_id, env.id, "conversion", d.kind, d.conversion_id, d.content_id, d.occurred_at, keyed)
    if kind is SuggestionApproved:
        return Fact(
            t, d.proposer_id, env.id, "suggestion_approved", None, d.content_id, d.content_id, d.approved_at, keyed
        )
    return None


def _by_type(events: Sequence[Envelope[Any]]) -> dict[type[Any], list[Envelope[Any]]]:
    out: dict[type[Any], list[Envelope[Any]]] = defaultdict(list)
    for env in events:
        out[type(env.data)].append(env)
    return out


async def apply_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """The consumer handler: everything gamification does with what it hears."""
    by_type = _by_type(events)
    settings = by_type.get(TenantSettingsUpdated, [])
    if settings:
        tenants = {e.tenant_id for e in settings}
        before = await load_contexts(session, tenants)
        await apply_tenant_settings(session, settings)
        after = await load_contexts(session, tenants)
        for t in sorted(tenants):
            old, new = before[t].settings, after[t].settings
            if (old.time_zone, old.week_starts_on) != (new.time_zone, new.week_starts_on):
                await rebuild_windows(session, t, new.time_zone, new.week_start_index)
    membership = by_type.get(MemberUpdated, [])
    if membership:
        await members.apply_membership(session, membership)
    directory = by_type.get(MemberProvisioned, [])
    if directory:  # before the facts: a deactivation in the same batch already counts
        await members.apply_directory(session, directory)
    team_sizes = by_type.get(TeamUpdated, [])
    if team_sizes:
        await members.apply_team_sizes(session, team_sizes)

    facts = [f for f in map(fact_of, events) if f is not None]
    invalidated = by_type.get(ClickInvalidated, [])
    people_keys = {(f.tenant_id, f.employee_id) for f in facts} | {
        (e.tenant_id, e.data.employee_id) for e in invalidated
    }
    gone = await members.erased(session, people_keys) if people_keys else set()

    sharers: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    others: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for env in events:
        d = env.data
        kind = type(d)
        if kind is _CLICK_LIGHT or kind is ShareClicked or kind is ConversionRecorded:
            others.setdefault((env.tenant_id, d.employee_id), (None, d.team))
        elif kind is ShareCreated:
            sharers[(env.tenant_id, d.employee_id)] = (d.employee_name, d.team)
        elif kind is SuggestionApproved:
            others.setdefault((env.tenant_id, d.proposer_id), (None, None))
    await members.note_people(session, {k: v for k, v in sharers.items() if k not in gone}, overwrite=True)
    await members.note_people(
        session, {k: v for k, v in others.items() if k not in gone and k not in sharers}, overwrite=False
    )

    facts = [f for f in facts if (f.tenant_id, f.employee_id) not in gone]
    invalidated = [e for e in invalidated if (e.tenant_id, e.data.employee_id) not in gone]
    contexts = await load_contexts(session, {f.tenant_id for f in facts} | {e.tenant_id for e in invalidated})
    facts = await fresh_facts(session, facts, contexts)
    inactive = await members.inactive_among(session, {(f.tenant_id, f.employee_id) for f in facts})
    posted = await post(session, await entries_for(session, facts, contexts, inactive))
    if invalidated:
        posted += await reverse_clicks(session, invalidated)
    await badges.record_activity(session, posted, contexts)

    for env in by_type.get(MemberErased, []):
        await members.erase(session, env.tenant_id, env.data.employee_id, env.data.erased_at)


async def fresh_facts(session: AsyncSession, facts: Sequence[Fact], contexts: dict[str, TenantContext]) -> list[Fact]:
    """``facts`` without the copies of a keyed fact (a click: no inbox claim dropped them, ADR 0022):
    a second one in the batch, and one whose award the ledger already holds (under any rule version).
    The cap rows of the keyed facts are locked first, so a transaction applying the same click at the
    same time (a consumer that lost its partitions and does not know it yet) waits for the other's
    commit and then finds its award: the cap counts only what is new, as the inbox made sure before."""
    keyed = [f for f in facts if f.keyed]
    if not keyed:
        return list(facts)
    capping = {
        (t, a)
        for t, a in {(f.tenant_id, f.action) for f in keyed}
        if any(v.body.daily_caps.cap(a) is not None for v in (DEFAULT_VERSION, *contexts[t].versions))
    }
    locks: set[tuple[str, str, str, date, int]] = set()
    for f in keyed:
        if (f.tenant_id, f.action) not in capping:
            continue
        ctx = contexts[f.tenant_id]
        if ctx.rules_at(f.occurred_at).body.daily_caps.cap(f.action) is not None:
            locks.add((f.tenant_id, f.employee_id, f.action, f.occurred_at.astimezone(ctx.settings.zone).date(), 0))
    if locks:
        await session.execute(_LOCK_CAPS, rows_param(sorted(locks)))
    rows = await session.execute(_HELD, rows_param(list({(f.tenant_id, f.event_id) for f in keyed})))
    held: set[tuple[str, str]] = {(t, e) for t, e in rows.all()}
    out = []
    for f in facts:
        if f.keyed:
            key = (f.tenant_id, f.event_id)
            if key in held:
                continue
            held.add(key)  # a second copy in this batch
        out.append(f)
    return out


async def entries_for(
    session: AsyncSession,
    facts: Sequence[Fact],
    contexts: dict[str, TenantContext],
    inactive: set[tuple[str, str]] | None = None,
) -> list[NewEntry]:
    """Score each fact under its rule version; the ones over a daily cap earn 0 (``capped``), and so
    do those of people the directory has deactivated (``inactive``: reason ``member_inactive``,
    counted against no cap and crediting no content item)."""
    inactive = inactive or set()
    off = {i for i, f in enumerate(facts) if (f.tenant_id, f.employee_id) in inactive} if inactive else set()
    # by position in ``facts`` (a Fact is not hashable)
    versions = [contexts[f.tenant_id].rules_at(f.occurred_at) for f in facts]
    capped_keys: dict[tuple[str, str, str, date], list[int]] = defaultdict(list)
    capping = [i for i, f in enumerate(facts) if versions[i].body.daily_caps.cap(f.action) is not None and i not in off]
    for i in sorted(capping, key=lambda i: facts[i].occurred_at):  # stable: arrival order within an instant
        f = facts[i]
        zone = contexts[f.tenant_id].settings.zone
        capped_keys[(f.tenant_id, f.employee_id, f.action, f.occurred_at.astimezone(zone).date())].append(i)
    over: set[int] = set()
    if capped_keys:
        rows = await session.execute(
            _COUNT_CAPPED, rows_param([(*key, len(fs)) for key, fs in sorted(capped_keys.items())])
        )
        for t, e, a, d, count in rows.all():
            fs = capped_keys[(t, e, a, d)]
            before = int(count) - len(fs)
            for n, i in enumerate(fs):
                cap = versions[i].body.daily_caps.cap(facts[i].action)
                if cap is not None and before + n + 1 > cap:
                    over.add(i)
    repeats = await _repeat_credits(session, facts, versions, over | off)
    out = []
    for i, f in enumerate(facts):
        v = versions[i]
        capped = i in over
        earns = not (capped or i in repeats or i in off)
        points = v.body.points_for(f.action, f.detail, f.content_id, f.occurred_at) if earns else 0
        reason = INACTIVE_REASON if i in off else REPEAT_REASON if i in repeats else None
        out.append(
            NewEntry(
                tenant_id=f.tenant_id,
                employee_id=f.employee_id,
                event_id=f.event_id,
                rule_version=v.version,
                entry_type="award",
                action=f.action,
                detail=f.detail,
                ref=f.ref,
                content_id=f.content_id,
                points=points,
                balance_delta=points,
                occurred_at=f.occurred_at,
                capped=capped,
                reason=reason,
            )
        )
    return out


#: The ledger's reason on what a deactivated person's activity earned (nothing).
INACTIVE_REASON = "member_inactive"
REPEAT_REASON = "already credited for this content item (rules: share_points_per = content)"


async def _repeat_credits(
    session: AsyncSession, facts: Sequence[Fact], versions: Sequence[RuleVersion], over: set[int]
) -> set[int]:
    """The facts (by position) that would credit an employee a second time for the same content item
    under their version's rules (``share_points_per: content``): an award in the ledger that earned
    points and was not reversed, or an earlier fact of this batch, already did. "Earlier" is the
    order of arrival, not of ``occurred_at``: an employee's events arrive in order (keyed by
    employee), and a batch then scores as the same events one at a time."""
    candidates = [
        i
        for i, f in enumerate(facts)
        if f.content_id is not None and versions[i].body.once_per_content(f.action) and i not in over
    ]
    if not candidates:
        return set()
    keys = sorted(
        {(facts[i].tenant_id, facts[i].employee_id, facts[i].action, facts[i].content_id) for i in candidates}
    )
    credited: set[tuple[str, str, str, str]] = set()
    rev = LEDGER.alias("rev")
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        rows = await session.execute(
            sa.select(LEDGER.c.tenant_id, LEDGER.c.employee_id, LEDGER.c.action, LEDGER.c.content_id)
            .where(
                sa.tuple_(LEDGER.c.tenant_id, LEDGER.c.employee_id, LEDGER.c.action, LEDGER.c.content_id).in_(chunk),
                LEDGER.c.entry_type == "award",
                LEDGER.c.points > 0,
                ~sa.exists().where(rev.c.reverses_id == LEDGER.c.id),
            )
            .distinct()
        )
        credited.update((r[0], r[1], r[2], r[3]) for r in rows.all())
    repeats: set[int] = set()
    for i in candidates:  # in arrival order: a batch credits the share one-at-a-time delivery would
        f = facts[i]
        key = (f.tenant_id, f.employee_id, f.action, f.content_id or "")
        if key in credited:
            repeats.add(i)
        elif versions[i].body.points_for(f.action, f.detail, f.content_id, f.occurred_at) > 0:
            credited.add(key)
    return repeats


async def reverse_clicks(session: AsyncSession, invalidated: Sequence[Envelope[ClickInvalidated]]) -> list[Any]:
    """Reverse the awards of invalidated clicks, found by the click's event id (sharing's
    :func:`click_event_id`) on the prefix of the ledger's unique (tenant, event id, rule version)
    index: no index on ``ref`` (a random click id: a random leaf page per award) is needed."""
    by_tenant: dict[str, dict[str, str]] = defaultdict(dict)  # tenant -> click event id -> reason
    for env in invalidated:
        by_tenant[env.tenant_id][click_event_id(env.data.click_id)] = env.data.reason
    posted = []
    for tenant_id, reasons in sorted(by_tenant.items()):
        awards = (
            await session.execute(
                unreversed_awards().where(
                    LEDGER.c.tenant_id == tenant_id,
                    LEDGER.c.event_id == sa.any_(sa.literal(sorted(reasons), ARRAY(sa.Text))),
                    LEDGER.c.action == "click",
                )
            )
        ).all()
        for reason in sorted(set(reasons.values())):
            group = [a for a in awards if reasons[a.event_id] == reason]
            posted += await reverse(session, group, reason=f"click invalidated: {reason}"[:500])
    return posted
