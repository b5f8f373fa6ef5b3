"""Recording consumed events as facts, and moving the aggregates for the new ones (one transaction).

A fact's primary key is its own id (share, click, conversion...): an event seen again, even under
another event id, inserts nothing and moves nothing. Facts that pair up (a click and its
invalidation, a conversion and its click's dimensions) may arrive in either order; whichever comes
second applies the pair. Advisory locks (shared per tenant, exclusive per employee, in sorted
order) keep two worker processes from each missing the other's half of a pair, and let a rebuild
hold a tenant still.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import rows_param
from advocacy_common.db import insert_new, overlapped
from advocacy_common.events import REGISTRY, Envelope
from advocacy_common.events.base import twin
from advocacy_common.events.content import MemberErased, MemberProvisioned, MemberUpdated, TenantSettingsUpdated
from advocacy_common.events.gamification import RedemptionCancelled, RewardRedeemed
from advocacy_common.events.sharing import (
    AccountUpdated,
    ClickInvalidated,
    ConversionRecorded,
    ShareClicked,
    ShareCreated,
    Verdict,
)
from advocacy_common.tenant import TenantSettings
from advocacy_common.tenant_store import TENANT_SETTINGS, apply_tenant_settings, load_tenant_settings, settings_of
from advocacy_metrics import domain
from advocacy_metrics.adapters import adoption_steps, aggregates
from advocacy_metrics.adapters.aggregates import insert_ignore, insert_new_statements
from advocacy_metrics.adapters.factrows import (
    CLICK_FIELDS,
    CONVERSION_FIELDS,
    DIMS_SQL,
    click_of,
    conversion_of,
    dims_at,
    fields_sql,
)
from advocacy_metrics.adapters.locks import json_param, lock
from advocacy_metrics.db import (
    ACCOUNT_FACTS,
    CLICK_FACTS,
    CLICK_INVALIDATIONS,
    CONVERSION_FACTS,
    DIRECTORY_FACTS,
    ERASED_MEMBERS,
    MEMBER_FACTS,
    REDEMPTION_FACTS,
    SHARE_FACTS,
)
from advocacy_metrics.features.rebuild import erase_member, rebuild_tenant

HANDLED = (
    ShareCreated,
    ShareClicked,
    ClickInvalidated,
    ConversionRecorded,
    AccountUpdated,
    MemberUpdated,
    MemberProvisioned,
    MemberErased,
    TenantSettingsUpdated,
    RewardRedeemed,
    RedemptionCancelled,
)

_HANDLED = frozenset(HANDLED)
#: The handled events of a person (their ``employee_id``): the people whose locks a batch takes.
_PERSONAL = frozenset(t for t in HANDLED if "employee_id" in t.model_fields)
#: Their ``ce_type``: the consumer runner neither decodes nor claims the other events on the topics.
HANDLED_TYPES = frozenset(t.TYPE for t in HANDLED)
#: Types whose effects are gated by the fact's own key alone (``fresh`` comes from the insert, never
#: from the batch), so the runner does not claim them in the inbox (docs/adr/0021-fact-keyed-events-skip-the-inbox.md).
KEYED_TYPES = frozenset({ShareClicked.TYPE})
#: Types the handler takes as light data (``ConsumerSpec.light_types``): their fields are only read.
LIGHT_TYPES = frozenset({ShareClicked.TYPE})
#: A light type's twin, grouped as its model (one dict get per event).
_AS_MODEL: dict[type[Any], type[Any]] = {twin(REGISTRY[t]): REGISTRY[t] for t in LIGHT_TYPES}

SHARE_COLUMNS = ("share_id", "tenant_id", "employee_id", "content_id", "network", "team", "created_at", "audience_size")
#: A bot verdict's reason, as stored (sharing's reasons are short names; anything longer is cut).
MAX_REASON = 100

CLICK_COLUMNS = (
    "click_id",
    "tenant_id",
    "share_id",
    "employee_id",
    "content_id",
    "network",
    "team",
    "clicked_at",
    "verdict",
    "device",
    "browser",
    "os",
    "referrer_domain",
    "country",
    "reason",
    "invalidated",
)
CONVERSION_COLUMNS = (
    "conversion_id",
    "tenant_id",
    "click_id",
    "share_id",
    "employee_id",
    "content_id",
    "network",
    "team",
    "kind",
    "amount",
    "currency",
    "occurred_at",
)


# -- the handler ------------------------------------------------------------------------------------
async def record_events(session: AsyncSession, events: Sequence[Envelope[Any]]) -> None:
    """The consumer's batch handler: facts in, aggregates moved, in the caller's transaction."""
    # grouped by exact type (the event models are final): ``isinstance`` on a pydantic model goes
    # through ABCMeta, a dozen times per event here. One pass: the types, tenants and people
    by_type: dict[type[Any], list[Envelope[Any]]] = defaultdict(list)  # each in batch order
    tenant_set: set[str] = set()
    people_set: set[tuple[str, str]] = set()
    as_model = _AS_MODEL
    for e in events:
        kind = type(e.data)
        kind = as_model.get(kind, kind)
        if kind in _HANDLED:
            by_type[kind].append(e)
            tenant_set.add(e.tenant_id)
            if kind in _PERSONAL:
                people_set.add((e.tenant_id, e.data.employee_id))
    if not by_type:
        return
    tenants, people = sorted(tenant_set), sorted(people_set)
    await lock(session, tenants, people)

    rezoned, reweeked = await _record_settings(session, by_type[TenantSettingsUpdated])
    for e in by_type[MemberErased]:
        await erase_member(session, e.tenant_id, e.data.employee_id, e.data.erased_at)
    erased, settings = await _erased_and_settings(session, people, tenants)
    redemptions = (  # in batch order (a cancel and its redemption may share a batch)
        [e for e in events if type(e.data) is RewardRedeemed or type(e.data) is RedemptionCancelled]
        if RewardRedeemed in by_type or RedemptionCancelled in by_type
        else []
    )

    def kept(kind: type[Any]) -> list[Envelope[Any]]:
        if not erased:
            return by_type[kind]
        return [e for e in by_type[kind] if (e.tenant_id, getattr(e.data, "employee_id", None)) not in erased]

    zones = {t: s.zone for t, s in settings.items()}
    d = domain.Deltas()
    new = adoption_steps.NewRows()
    await _record_members(session, kept(MemberUpdated), new)
    await _record_directory(session, kept(MemberProvisioned), new)
    await _record_accounts(session, kept(AccountUpdated))
    await _record_redemptions(session, redemptions, erased)
    await _record_shares(session, kept(ShareCreated), zones, d)
    await _record_clicks(session, kept(ShareClicked), zones, d)
    await _record_invalidations(session, kept(ClickInvalidated), zones, d)
    await _record_conversions(session, kept(ConversionRecorded), zones, d)
    sharer_days = await aggregates.apply(session, d)
    for tenant_id, employee_id, day in sharer_days.new:
        new.share_days[(tenant_id, employee_id)].add(day)
    week_starts = {t: s.week_start_index for t, s in settings.items()}
    await adoption_steps.record(session, new, zones, week_starts, sharer_days.days)
    if rezoned:
        for tenant in sorted(rezoned):  # days moved: every aggregate of the tenant is recomputed
            await rebuild_tenant(session, tenant)
    for tenant in sorted(reweeked - rezoned):  # "this week" moved: only the adoption steps
        await adoption_steps.recompute_tenant(session, tenant)


#: ``(tenant_id, id)`` pairs from the ``:pairs`` parameter (a JSON array of two-string arrays).
PAIRS = "(SELECT r->>0 AS tenant_id, r->>1 AS id FROM jsonb_array_elements(CAST(:pairs AS jsonb)) AS r)"


#: A batch's erased people and its tenants' settings copies in one round trip: ``(tenant, employee,
#: NULL)`` rows for the erased, ``(tenant, NULL, settings)`` rows for the copies.
_ERASED_AND_SETTINGS = sa.text(
    f"SELECT m.tenant_id, m.employee_id, NULL::jsonb FROM {ERASED_MEMBERS.name} m JOIN {PAIRS} AS k "  # noqa: S608
    "ON m.tenant_id = k.tenant_id AND m.employee_id = k.id "
    f"UNION ALL SELECT s.tenant_id, NULL, s.settings FROM {TENANT_SETTINGS.name} s "
    "WHERE s.tenant_id IN (SELECT jsonb_array_elements_text(CAST(:tenants AS jsonb)))"
).columns(sa.column("tenant_id", sa.Text), sa.column("employee_id", sa.Text), TENANT_SETTINGS.c.settings)


async def _erased_and_settings(
    session: AsyncSession, people: Sequence[tuple[str, str]], tenants: Sequence[str]
) -> tuple[set[tuple[str, str]], dict[str, TenantSettings]]:
    """Who among ``people`` is erased, and each of ``tenants``' settings."""
    res = await session.execute(_ERASED_AND_SETTINGS, {"pairs": json_param(people), "tenants": json_param(tenants)})
    erased: set[tuple[str, str]] = set()
    copies: dict[str, Any] = {}
    for tenant, employee, raw in res.all():
        if employee is None:
            copies[tenant] = raw
        else:
            erased.add((tenant, employee))
    return erased, {t: settings_of(copies.get(t)) for t in tenants}


async def _record_settings(session: AsyncSession, events: list[Envelope[Any]]) -> tuple[set[str], set[str]]:
    """Keep the settings copy; return the tenants whose time zone changed (their days move), and
    those whose week start changed (their "this week" moves)."""
    if not events:
        return set(), set()
    tenants = sorted({e.tenant_id for e in events})
    before = {t: await load_tenant_settings(session, t) for t in tenants}
    await apply_tenant_settings(session, events)
    after = {t: await load_tenant_settings(session, t) for t in tenants}
    return (
        {t for t in tenants if before[t].time_zone != after[t].time_zone},
        {t for t in tenants if before[t].week_starts_on != after[t].week_starts_on},
    )


def _first_by(events: Iterable[Envelope[Any]], key: str) -> list[Envelope[Any]]:
    seen: dict[str, Envelope[Any]] = {}
    for e in events:
        seen.setdefault(getattr(e.data, key), e)
    return list(seen.values())


async def _record_shares(
    session: AsyncSession, events: list[Envelope[Any]], zones: dict[str, ZoneInfo], d: domain.Deltas
) -> None:
    rows = [
        (
            e.data.share_id,
            e.tenant_id,
            e.data.employee_id,
            e.data.content_id,
            e.data.network,
            e.data.team or "",
            e.data.created_at,
            e.data.audience_size,
        )
        for e in _first_by(events, "share_id")
    ]
    new = {r[0] for r in await insert_ignore(session, SHARE_FACTS, SHARE_COLUMNS, rows, ("share_id",))}
    for r in rows:
        if r[0] in new:
            s = domain.Share(r[1], r[0], r[2], r[3], r[4], r[5], r[6], r[7])
            d.add_share(s, zones[s.tenant_id])


async def _pairs_lookup(
    session: AsyncSession, table: sa.Table, id_column: str, pairs: list[tuple[str, str]], columns: str = "*"
) -> list[Any]:
    """Rows of ``table`` whose (tenant_id, ``id_column``) is among ``pairs``."""
    if not pairs:
        return []
    sql = (
        f"SELECT {columns} FROM {table.name} t JOIN {PAIRS} "  # noqa: S608
        f"AS k ON t.tenant_id = k.tenant_id AND t.{id_column} = k.id"
    )
    res = await session.execute(sa.text(sql), {"pairs": json_param(pairs)})
    return list(res.all())


#: A batch's clicks, before they land, in one round trip: those invalidated already (``false`` rows,
#: the click id third) and the conversions that arrived before them (``true`` rows, then
#: :data:`CONVERSION_FIELDS`). No conversion fact is written between this read and the clicks' insert:
#: a batch records its conversions after its clicks, and another worker waits on the person's lock.
_CLICK_LOOKUPS = sa.text(
    f"WITH k AS MATERIALIZED {PAIRS} "  # noqa: S608 - table and column names are ours
    "SELECT false, t.tenant_id, NULL, t.click_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL "
    f"FROM {CLICK_INVALIDATIONS.name} t JOIN k ON t.tenant_id = k.tenant_id AND t.click_id = k.id "
    f"UNION ALL SELECT true, {fields_sql(CONVERSION_FIELDS, 't')} "
    f"FROM {CONVERSION_FACTS.name} t JOIN k ON t.tenant_id = k.tenant_id AND t.click_id = k.id"
)


#: A batch's clicks land by a plain insert, the skipping one after a unique violation (insert_new),
#: at most this many a statement.
CLICKS_PER_STATEMENT = 5000
_LAND_CLICKS, _LAND_CLICKS_SKIPPING = insert_new_statements(CLICK_FACTS, CLICK_COLUMNS, "click_id")


async def _record_clicks(
    session: AsyncSession, events: list[Envelope[Any]], zones: dict[str, ZoneInfo], d: domain.Deltas
) -> None:
    events = _first_by(events, "click_id")
    if not events:
        return
    found: list[Any] = []

    async def look_up() -> None:
        pairs = json_param([(e.tenant_id, e.data.click_id) for e in events])
        found.extend((await session.execute(_CLICK_LOOKUPS, {"pairs": pairs})).all())

    # the rows are built while the database looks the clicks up; a click found invalidated already
    # (rare: its invalidation came first) has its flag set after
    rows = await overlapped(look_up(), lambda: _click_rows(events))
    invalid = {r[3] for r in found if not r[0]}
    if invalid:
        rows = [(*r[:15], r[8] == "counted" and r[0] in invalid) for r in rows]
    # the clicks of conversions that arrived before them: their dimensions are wanted
    wanted = {r[3] for r in found if r[0]}
    # the deltas are computed while the clicks land, as if all were new (a backlog's are): the
    # batch's Python and the database's insert at once. Clicks stored before (a redelivery) make the
    # plain insert fail and the skipping one answer them (insert_new); then the deltas are computed
    # again from the new ones alone
    there, (dims_by_id, moved) = await insert_new(
        session,
        _LAND_CLICKS,
        _LAND_CLICKS_SKIPPING,
        rows_param(rows[:CLICKS_PER_STATEMENT]),
        lambda: _click_deltas(rows, zones, wanted),
    )
    present = {r[0] for r in there}
    for i in range(CLICKS_PER_STATEMENT, len(rows), CLICKS_PER_STATEMENT):  # a batch of more
        there, _ = await insert_new(
            session, _LAND_CLICKS, _LAND_CLICKS_SKIPPING, rows_param(rows[i : i + CLICKS_PER_STATEMENT]), lambda: None
        )
        present.update(r[0] for r in there)
    if present:
        dims_by_id, moved = _click_deltas([r for r in rows if r[0] not in present], zones, wanted)
    d.add(moved)
    # conversions that arrived before their click: their share of the click's dimensions lands now
    # (with a fresh click only: one stored before took them when it landed)
    for r in found:
        if r[0] and (dims := dims_by_id.get(r[3])) is not None:
            v = conversion_of(r[1:])
            d.add_conversion_dims(v, zones[v.tenant_id], dims)


#: A verdict's stored text (an enum member's ``.value`` is a property: a call per click).
_VERDICT_TEXT = {v: v.value for v in Verdict}


def _click_rows(events: Iterable[Envelope[Any]]) -> list[tuple[Any, ...]]:
    """:data:`CLICK_COLUMNS` tuples of click events, not invalidated."""
    verdicts = _VERDICT_TEXT
    return [
        (
            c.click_id,
            e.tenant_id,
            c.share_id,
            c.employee_id,
            c.content_id,
            c.network,
            c.team or "",
            c.clicked_at,
            verdicts[c.verdict],
            c.device,
            c.browser,
            c.os,
            c.referrer_domain,
            c.country,
            (c.reason or "")[:MAX_REASON] or None,
            False,
        )
        for e in events
        for c in (e.data,)
    ]


def _click_deltas(
    rows: Sequence[Sequence[Any]], zones: dict[str, ZoneInfo], wanted: Collection[str] = ()
) -> tuple[dict[str, domain.Dims], domain.Deltas]:
    """The dimensions of the clicks of ``rows`` (:data:`CLICK_COLUMNS` tuples) whose id is ``wanted``,
    by click id, and what the clicks add to the aggregates."""
    # a batch's clicks repeat their keys (a person's clicks on a content in a day): each key is
    # counted first, then moved once by its count (tenant, day, employee, content, network, team,
    # verdict, invalidated, then the dimensions as stored)
    counts: dict[tuple[Any, ...], int] = {}
    local_day = domain.local_day
    dim_values = _DIM_VALUES
    for r in rows:
        tenant = r[1]
        k = (tenant, local_day(r[7], zones[tenant]), r[3], r[4], r[5], r[6], r[8], r[15], dim_values(r))
        counts[k] = counts.get(k, 0) + 1
    d = domain.Deltas()
    add = d.add_clicks_on
    effective_verdict = domain.effective_verdict
    # a batch's clicks share a few dimension values (countries, devices): one Dims for each
    dims_of: dict[tuple[str | None, ...], domain.Dims] = {}
    for k, n in counts.items():
        dims = dims_of.get(k[8])
        if dims is None:
            dims = dims_of[k[8]] = dims_at(k[8], 0)
        add(k[0], k[1], k[2], k[3], k[4], k[5], effective_verdict(k[6], k[7]), dims, n)
    dims_by_id = {r[0]: dims_at(_DIM_VALUES(r), 0) for r in rows if r[0] in wanted} if wanted else {}
    return dims_by_id, d


#: A :data:`CLICK_COLUMNS` tuple's dimension values as stored (``None`` for unknown), in
#: :class:`domain.Dims`' order (country, device, referrer, reason: :func:`dims_at`'s).
_DIM_VALUES = operator.itemgetter(13, 9, 12, 14)


async def _record_invalidations(
    session: AsyncSession, events: list[Envelope[Any]], zones: dict[str, ZoneInfo], d: domain.Deltas
) -> None:
    events = _first_by(events, "click_id")
    if not events:
        return
    rows = [(e.data.click_id, e.tenant_id, e.data.reason, e.data.invalidated_at) for e in events]
    new = await insert_ignore(
        session,
        CLICK_INVALIDATIONS,
        ("click_id", "tenant_id", "reason", "invalidated_at"),
        rows,
        ("tenant_id", "click_id"),
    )
    if not new:
        return
    res = await session.execute(
        sa.text(
            "UPDATE click_facts t SET invalidated = true "  # noqa: S608 - column names are ours
            "FROM (SELECT * FROM unnest(CAST(:t AS text[]), CAST(:i AS text[]))) AS k(tenant_id, id) "
            "WHERE t.tenant_id = k.tenant_id AND t.click_id = k.id AND t.verdict = 'counted' AND NOT t.invalidated "
            f"RETURNING {fields_sql(CLICK_FIELDS, 't')}"
        ),
        {"t": [t for t, _ in new], "i": [i for _, i in new]},
    )
    for r in res.all():
        c = click_of(r)
        d.invalidate(c, zones[c.tenant_id])


async def _record_conversions(
    session: AsyncSession, events: list[Envelope[Any]], zones: dict[str, ZoneInfo], d: domain.Deltas
) -> None:
    events = _first_by(events, "conversion_id")
    if not events:
        return
    rows = [
        (
            v.conversion_id,
            e.tenant_id,
            v.click_id,
            v.share_id,
            v.employee_id,
            v.content_id,
            v.network,
            v.team or "",
            v.kind,
            v.value.amount if v.value else Decimal(0),
            v.value.currency if v.value else "",
            v.occurred_at,
        )
        for e in events
        for v in (e.data,)
    ]
    new = {r[0] for r in await insert_ignore(session, CONVERSION_FACTS, CONVERSION_COLUMNS, rows, ("conversion_id",))}
    fresh = [
        domain.Conversion(r[1], r[0], r[2], r[4], r[5], r[6], r[7], r[11], r[8], r[9], r[10])
        for r in rows
        if r[0] in new
    ]
    clicks = {
        r[0]: dims_at(r, 1)
        for r in await _pairs_lookup(
            session,
            CLICK_FACTS,
            "click_id",
            [(v.tenant_id, v.click_id) for v in fresh],
            f"t.click_id, {fields_sql(DIMS_SQL, 't')}",
        )
    }
    for v in fresh:
        d.add_conversion(v, zones[v.tenant_id], clicks.get(v.click_id))


async def _record_members(session: AsyncSession, events: list[Envelope[Any]], new: adoption_steps.NewRows) -> None:
    if not events:
        return
    rows = {
        (e.tenant_id, e.data.employee_id, e.data.updated_at): {
            "tenant_id": e.tenant_id,
            "employee_id": e.data.employee_id,
            "updated_at": e.data.updated_at,
            "enrolled": e.data.enrolled,
            "programme_roles": list(e.data.programme_roles),
            "team": e.data.team or "",
        }
        for e in events
    }
    stmt = pg_insert(MEMBER_FACTS).values(list(rows.values())).on_conflict_do_nothing()
    t = MEMBER_FACTS.c
    for tenant, employee, at in await session.execute(stmt.returning(t.tenant_id, t.employee_id, t.updated_at)):
        new.members[(tenant, employee)].add(at)


async def _record_directory(session: AsyncSession, events: list[Envelope[Any]], new: adoption_steps.NewRows) -> None:
    """Directory records as history (a replayed or late one inserts nothing or fills in the past)."""
    if not events:
        return
    rows = {
        (e.tenant_id, e.data.employee_id, e.data.updated_at): {
            "tenant_id": e.tenant_id,
            "employee_id": e.data.employee_id,
            "updated_at": e.data.updated_at,
            "active": e.data.active,
        }
        for e in events
    }
    stmt = pg_insert(DIRECTORY_FACTS).values(list(rows.values())).on_conflict_do_nothing()
    t = DIRECTORY_FACTS.c
    for tenant, employee, at in await session.execute(stmt.returning(t.tenant_id, t.employee_id, t.updated_at)):
        new.directory[(tenant, employee)].add(at)


async def _record_accounts(session: AsyncSession, events: list[Envelope[Any]]) -> None:
    latest: dict[tuple[str, str, str], Envelope[Any]] = {}
    for e in events:
        k = (e.tenant_id, e.data.employee_id, e.data.network)
        if k not in latest or latest[k].data.updated_at < e.data.updated_at:
            latest[k] = e
    if not latest:
        return
    stmt = pg_insert(ACCOUNT_FACTS).values(
        [
            {
                "tenant_id": t,
                "employee_id": emp,
                "network": net,
                "audience_size": e.data.audience_size,
                "updated_at": e.data.updated_at,
            }
            for (t, emp, net), e in sorted(latest.items())
        ]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "employee_id", "network"],
            set_={"audience_size": stmt.excluded.audience_size, "updated_at": stmt.excluded.updated_at},
            where=ACCOUNT_FACTS.c.updated_at < stmt.excluded.updated_at,
        )
    )


async def _record_redemptions(session: AsyncSession, events: list[Envelope[Any]], erased: set[tuple[str, str]]) -> None:
    """Programme cost: a redemption's value counts unless cancelled (cancel may arrive first).

    An erased person's redemptions still cost the programme; they are kept without the person."""
    t = REDEMPTION_FACTS
    for e in events:
        r = e.data
        employee = "" if (e.tenant_id, r.employee_id) in erased else r.employee_id
        amount = r.value.amount if r.value else Decimal(0)
        currency = r.value.currency if r.value else ""
        base = {"redemption_id": r.redemption_id, "tenant_id": e.tenant_id, "employee_id": employee}
        if isinstance(r, RewardRedeemed):
            stmt = pg_insert(t).values(**base, amount=amount, currency=currency, redeemed_at=r.redeemed_at)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["redemption_id"],
                    set_={
                        "amount": stmt.excluded.amount,
                        "currency": stmt.excluded.currency,
                        "redeemed_at": stmt.excluded.redeemed_at,
                    },
                    where=t.c.redeemed_at.is_(None),
                )
            )
        else:
            stmt = pg_insert(t).values(**base, amount=amount, currency=currency, cancelled_at=r.cancelled_at)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["redemption_id"],
                    set_={"cancelled_at": stmt.excluded.cancelled_at},
                    where=t.c.cancelled_at.is_(None),
                )
            )
