"""The ledger: append entries, and move every derived figure by exactly what was appended.

:func:`post` is the only writer of ``points_totals``, ``balances`` and ``challenge_totals``: it
inserts the entries (a duplicate (event, rule version), or a second reversal of an entry, inserts
nothing), then increments the figures for the rows that were really inserted, in the same
transaction. It also queues ``points.awarded`` events and a NOTIFY for the live boards (delivered
by PostgreSQL on commit, to every API replica listening).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from operator import attrgetter
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from advocacy_common.bulk import insert_rows, rows_param, rows_select
from advocacy_common.db import insert_new, overlapped
from advocacy_common.events import Envelope, assembler, new_event
from advocacy_common.events.gamification import PointsAwarded, PointsAwardedV2, PointsOfAction
from advocacy_common.outbox import add_events
from advocacy_gamification import domain
from advocacy_gamification.adapters.context import TenantContext, load_contexts
from advocacy_gamification.adapters.sql import people_in, ranked_member
from advocacy_gamification.db import (
    BALANCES,
    BOARDS,
    CHALLENGE_TOTALS,
    CHALLENGES,
    LEDGER,
    MEMBERS,
    SCORE_COUNTS,
    TOTALS,
)
from advocacy_gamification.settings import SOURCE

T = TypeVar("T")

BOARD_CHANNEL = "gamification_board"
#: Erasures, so API replicas end that person's live streams (payload: JSON ``[tenant, employee]``).
ERASED_CHANNEL = "gamification_erased"


# Not frozen: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, and a
# consumed batch builds one entry per click (15 fields: 6.8 us frozen, 2.1 us not, issue 19). Nothing
# hashes an entry or changes one after it is built.
@dataclass(slots=True)
class NewEntry:
    tenant_id: str
    employee_id: str
    event_id: str
    rule_version: int
    entry_type: str
    action: str
    points: int
    balance_delta: int
    occurred_at: datetime
    detail: str | None = None
    ref: str | None = None
    content_id: str | None = None
    capped: bool = False
    reverses_id: int | None = None
    reason: str | None = None


ENTRY_FIELDS = tuple(f.name for f in fields(NewEntry))
_entry_row = attrgetter(*ENTRY_FIELDS)  # an entry as a row in ENTRY_FIELDS order

# -- the batch statements (fixed text: prepared once per connection, whatever the batch size) -------
_RETURNING = "RETURNING t.id, t.tenant_id, t.event_id, t.rule_version, t.reverses_id"
# A batch's entries are nearly always all new (clicks are probed first, ADR 0022; other events are
# claimed in the inbox), so they are appended by a plain insert, under a savepoint (insert_new). ``ON CONFLICT``
# makes every row a speculative insertion (each unique index probed first, then the row inserted and
# confirmed): a third of the statement (harness, batches of 5,000 clicks: 57-73 -> 42-49 ms). A
# unique violation (a copy, a second reversal of an entry; a concurrent transaction's entry is
# waited for, as by ``ON CONFLICT``) rolls the savepoint back, and the batch is inserted again by
# the statement that skips what the ledger holds.
_APPEND_ENTRIES = insert_rows(LEDGER, ENTRY_FIELDS, _RETURNING)
_INSERT_ENTRIES = insert_rows(LEDGER, ENTRY_FIELDS, f"ON CONFLICT DO NOTHING {_RETURNING}")
# A batch's window totals, and the moves of their score counts, in one statement. The batch's
# (tenant, window, first day, person) -> points deltas go in; each person's team and rank come from
# their ``members`` row (none: no team, ranked; as domain.is_ranked). The rows there are moved by a
# plain ``UPDATE`` (``up``), and only the others (``fresh``: the deltas less those ``up`` moved, a set
# difference, hashed or sorted, never a loop over ``up`` per row) are inserted, in key order, by an
# upsert (a row a concurrent transaction inserted meanwhile is moved by its ``ON CONFLICT`` arm).
# An upsert that finds its row locks it, then writes it: two heap changes per row where the
# ``UPDATE`` has one, and the statement was the largest per-person one (7,000-click batches: 8.7 ->
# 5.9 us a click of execution, docs/adr/0038-window-totals-by-update.md). The ``UPDATE`` locks its
# rows in its join's order, not in key order (sorting them cost the gain): a person's rows are
# moved by one lane (ADR 0028); where two transactions can still meet, and why a deadlock there is
# retried, not lost, is in ADR 0038. ``ranked`` of an existing row is left alone:
# membership changes copy it (sync_board_copies), so the row's score count moves from (old points,
# ranked) to (new points, ranked); the old points are the new minus the delta (``up`` returns its
# delta; a row of ``fresh`` not inserted, ``xmax <> 0``, is joined back to its delta).
# What comes back is the moves summed per score (a few rows per board: 9 for a 5,000-click batch of
# 2,000 people), not the 3 rows per person and batch (read, converted, summed per score: with each
# person's members row read for team and rank, a fifth of the handler's CPU per click, issue 19).
# :func:`post` applies them last (:func:`move_score_counts`): ``score_counts`` rows are the tenant's,
# shared by every batch, so a batch holds their locks only for its last statement and its commit, and
# two batches of other people (two replicas, two lanes of a consumer) overlap until then.
_DELTA_COLUMNS = ("tenant_id", "window", "window_start", "employee_id", "points")
_RANKED = ranked_member().compile(
    dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
    compile_kwargs={"literal_binds": True},
)
_KEY = 'tenant_id, "window", window_start, employee_id'
_MOVE_TOTALS = sa.text(
    f"WITH d AS ({rows_select(TOTALS, _DELTA_COLUMNS)}), "  # noqa: S608 - our identifiers
    f"dm AS (SELECT d.*, members.team, {_RANKED} AS ranked FROM d "
    "LEFT JOIN members ON members.tenant_id = d.tenant_id AND members.employee_id = d.employee_id), "
    "up AS ("
    "UPDATE points_totals AS t SET points = t.points + dm.points, team = dm.team FROM dm "
    'WHERE t.tenant_id = dm.tenant_id AND t."window" = dm."window" AND t.window_start = dm.window_start '
    "AND t.employee_id = dm.employee_id "
    'RETURNING t.tenant_id, t."window", t.window_start, t.employee_id, dm.points AS delta, dm.team, '
    "dm.ranked AS ranked_in, t.points, t.ranked"
    "), "
    f"fresh AS (SELECT {_KEY}, points, team, ranked FROM dm "
    f"EXCEPT ALL SELECT {_KEY}, delta, team, ranked_in FROM up), "
    "ins AS ("
    f"INSERT INTO points_totals AS t ({_KEY}, points, team, ranked) "
    f"SELECT {_KEY}, points, team, ranked FROM fresh "
    'ORDER BY tenant_id COLLATE "C", "window" COLLATE "C", window_start, employee_id COLLATE "C" '
    f"ON CONFLICT ({_KEY}) DO UPDATE SET points = t.points + excluded.points, team = excluded.team "
    'RETURNING t.tenant_id, t."window", t.window_start, t.employee_id, t.points, t.ranked, (t.xmax = 0) AS inserted'
    "), "
    "moves AS ("
    'SELECT tenant_id, "window", window_start, points, 1 AS n FROM up WHERE ranked '
    "UNION ALL "
    'SELECT tenant_id, "window", window_start, points - delta, -1 FROM up WHERE ranked '
    "UNION ALL "
    'SELECT tenant_id, "window", window_start, points, 1 FROM ins WHERE ranked '
    "UNION ALL "
    'SELECT ins.tenant_id, ins."window", ins.window_start, ins.points - fresh.points, -1 FROM ins '
    f"JOIN fresh USING ({_KEY}) WHERE ins.ranked AND NOT ins.inserted) "
    'SELECT tenant_id, "window", window_start, points, CAST(sum(n) AS INTEGER) FROM moves '
    'GROUP BY tenant_id, "window", window_start, points HAVING sum(n) <> 0'
)
_BOARD_COLUMNS = ("tenant_id", "window", "window_start")
_LIST_BOARDS = insert_rows(BOARDS, _BOARD_COLUMNS, "ON CONFLICT DO NOTHING")
_SCORE_COUNT_COLUMNS = ("tenant_id", "window", "window_start", "points", "count")
_UPSERT_SCORE_COUNTS = insert_rows(
    SCORE_COUNTS,
    _SCORE_COUNT_COLUMNS,
    'ON CONFLICT (tenant_id, "window", window_start, points) DO UPDATE SET count = t.count + excluded.count',
)
_ADD_BALANCES = insert_rows(
    BALANCES,
    ("tenant_id", "employee_id", "balance"),
    "ON CONFLICT (tenant_id, employee_id) DO UPDATE SET balance = t.balance + excluded.balance",
)
# A batch's challenge points per (challenge, person) in; each person's team and rank from their
# ``members`` row, as the window totals (_MOVE_TOTALS), in key order.
_CHALLENGE_COLUMNS = ("challenge_id", "tenant_id", "employee_id", "points")
_UPSERT_CHALLENGE_TOTALS = sa.text(
    f"WITH d AS ({rows_select(CHALLENGE_TOTALS, _CHALLENGE_COLUMNS)}) "  # noqa: S608 - our identifiers
    "INSERT INTO challenge_totals AS t (challenge_id, tenant_id, employee_id, team, points, ranked) "
    f"SELECT d.challenge_id, d.tenant_id, d.employee_id, members.team, d.points, {_RANKED} "
    "FROM d LEFT JOIN members ON members.tenant_id = d.tenant_id AND members.employee_id = d.employee_id "
    'ORDER BY d.challenge_id COLLATE "C", d.employee_id COLLATE "C" '
    "ON CONFLICT (challenge_id, employee_id) DO UPDATE SET "
    "points = t.points + excluded.points, team = excluded.team, ranked = excluded.ranked"
)


@dataclass(slots=True)
class Posted:
    id: int
    entry: NewEntry


def tenant_lock_key(tenant_id: str) -> int:
    """Advisory lock id of a tenant's boards: posting holds it shared; creating a challenge or
    rebuilding the windows after a calendar change holds it exclusive."""
    return int.from_bytes(
        hashlib.sha256(f"gamification-challenges:{tenant_id}".encode()).digest()[:8], "big", signed=True
    )


async def notify_boards(session: AsyncSession, tenant_ids: Iterable[str]) -> None:
    """Tell every listening API replica these tenants' boards changed (sent at commit)."""
    for t in sorted(set(tenant_ids)):
        await session.execute(sa.select(sa.func.pg_notify(BOARD_CHANNEL, t)))


async def notify_erased(session: AsyncSession, tenant_id: str, employee_id: str) -> None:
    """Tell every listening API replica this person was erased (sent at commit)."""
    payload = orjson.dumps([tenant_id, employee_id]).decode()
    await session.execute(sa.select(sa.func.pg_notify(ERASED_CHANNEL, payload)))


async def lock_balances(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Current balances, row-locked until commit (sorted, so two transactions never deadlock)."""
    ks = sorted(set(keys))
    if not ks:
        return {}
    rows = await session.execute(
        sa.select(BALANCES.c.tenant_id, BALANCES.c.employee_id, BALANCES.c.balance)
        .where(people_in(BALANCES.c.tenant_id, BALANCES.c.employee_id, ks))
        .order_by(BALANCES.c.tenant_id, BALANCES.c.employee_id)
        .with_for_update()
    )
    found = {(r.tenant_id, r.employee_id): int(r.balance) for r in rows.all()}
    return {k: found.get(k, 0) for k in ks}


async def post(
    session: AsyncSession,
    entries: Sequence[NewEntry],
    *,
    publish: bool = True,
) -> list[Posted]:
    """Append ``entries``; apply the increments of those inserted. Returns the inserted ones."""
    unique: dict[tuple[str, str, int, int | None], NewEntry] = {}
    for e in entries:
        unique.setdefault((e.tenant_id, e.event_id, e.rule_version, e.reverses_id), e)
    entries = list(unique.values())
    if not entries:
        return []
    # some in the ledger already: the skipping statement answers the others
    appended, _ = await insert_new(
        session, _APPEND_ENTRIES, _INSERT_ENTRIES, rows_param([_entry_row(e) for e in entries]), lambda: None
    )
    ids: dict[tuple[str, str, int, int | None], int] = {(r[1], r[2], r[3], r[4]): r[0] for r in appended}
    posted = [
        Posted(ids[k], e) for e in entries if (k := (e.tenant_id, e.event_id, e.rule_version, e.reverses_id)) in ids
    ]
    if not posted:
        return []
    scored = [p for p in posted if p.entry.points != 0]
    # Held shared until commit: a rebuild of the windows or a new challenge (exclusive) waits for
    # this transaction, or this one waits for it and then reads what it left; either way every
    # entry is counted once. The calendar is read after the lock for that reason.
    for t in sorted({p.entry.tenant_id for p in scored}):
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(tenant_lock_key(t))))
    contexts = await load_contexts(session, {p.entry.tenant_id for p in posted})
    # the points.awarded events are built (Python alone) while the database moves the window totals
    counts: dict[tuple[str, str, date, int], int] = {}
    events = await _move_totals(
        session, scored, contexts, counts, meanwhile=lambda: awarded_events(posted) if publish else []
    )
    await _move_balances(session, posted)
    await _move_challenges(session, scored)
    await add_events(session, events)
    if scored:
        await notify_boards(session, {p.entry.tenant_id for p in scored})
    await move_score_counts(session, counts)  # last: the tenant's rows (see _MOVE_TOTALS)
    return posted


async def _move_totals(
    session: AsyncSession,
    scored: Sequence[Posted],
    contexts: dict[str, TenantContext],
    counts: dict[tuple[str, str, date, int], int],
    *,
    meanwhile: Callable[[], T],
) -> T:
    """Move the window totals by ``scored``, and add the moves of their score counts to ``counts``
    ((tenant, window, start, points) -> people, for :func:`move_score_counts`); returns what
    ``meanwhile`` returns, run while the database executes the statement (:func:`overlapped`)."""
    # the points per person and local day first (a batch has many clicks per person and day), then
    # per window: each day's windows are computed once
    zones = {t: contexts[t].settings.zone for t in {p.entry.tenant_id for p in scored}}
    by_day: dict[tuple[str, date, str], int] = defaultdict(int)
    instant: dict[tuple[str, date], datetime] = {}  # (tenant, local day) -> an instant of that day
    for p in scored:
        e = p.entry
        day = e.occurred_at.astimezone(zones[e.tenant_id]).date()
        by_day[(e.tenant_id, day, e.employee_id)] += e.points
        instant.setdefault((e.tenant_id, day), e.occurred_at)
    windows = {key: contexts[key[0]].windows_for(at) for key, at in instant.items()}
    deltas: dict[tuple[str, str, date, str], int] = defaultdict(int)
    for (t, day, emp), points in by_day.items():
        for window, start in windows[(t, day)]:
            deltas[(t, window, start, emp)] += points
    if not deltas:
        return meanwhile()
    # the boards first (a few rows, sorted): sync_board_copies and erase find a person's rows by them
    await session.execute(_LIST_BOARDS, rows_param(sorted({(t, w, start) for t, w, start, _ in deltas})))
    moves = rows_param([(*key, points) for key, points in deltas.items()])

    async def move() -> None:
        for t, window, start, points, n in (await session.execute(_MOVE_TOTALS, moves)).all():
            counts[(t, window, start, points)] = counts.get((t, window, start, points), 0) + n

    return await overlapped(move(), meanwhile)


async def move_score_counts(session: AsyncSession, counts: dict[tuple[str, str, date, int], int]) -> None:
    """Apply (tenant, window, start, points) -> +/- people to ``score_counts`` (sorted: no deadlocks)."""
    rows = [(*key, n) for key, n in sorted(counts.items()) if n]
    if rows:
        await session.execute(_UPSERT_SCORE_COUNTS, rows_param(rows))


async def _move_balances(session: AsyncSession, posted: Sequence[Posted]) -> None:
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for p in posted:
        if p.entry.balance_delta:
            deltas[(p.entry.tenant_id, p.entry.employee_id)] += p.entry.balance_delta
    if not deltas:
        return
    gains = [(t, e, d) for (t, e), d in sorted(deltas.items()) if d > 0]
    losses = [{"t": t, "e": e, "d": d} for (t, e), d in sorted(deltas.items()) if d < 0]
    if gains:
        await session.execute(_ADD_BALANCES, rows_param(gains))
    if losses:
        # A loss is always computed from a locked, existing balance (reversal, spend); the CHECK
        # (balance >= 0) is the last line of defence. (An upsert would check the negative
        # would-be-inserted row first, so losses are plain updates.)
        await session.execute(
            sa.update(BALANCES)
            .where(BALANCES.c.tenant_id == sa.bindparam("t"), BALANCES.c.employee_id == sa.bindparam("e"))
            .values(balance=BALANCES.c.balance + sa.bindparam("d")),
            losses,
        )


async def _move_challenges(session: AsyncSession, scored: Sequence[Posted]) -> None:
    if not scored:
        return
    tenants = sorted({p.entry.tenant_id for p in scored})  # their board locks are held (see post)
    lo = min(p.entry.occurred_at for p in scored)
    hi = max(p.entry.occurred_at for p in scored)
    rows = (
        await session.execute(
            sa.select(
                CHALLENGES.c.id,
                CHALLENGES.c.tenant_id,
                CHALLENGES.c.starts_at,
                CHALLENGES.c.ends_at,
                CHALLENGES.c.content_ids,
            ).where(CHALLENGES.c.tenant_id.in_(tenants), CHALLENGES.c.starts_at <= hi, CHALLENGES.c.ends_at > lo)
        )
    ).all()
    if not rows:
        return
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_tenant[r.tenant_id].append(r)
    deltas: dict[tuple[str, str, str], int] = defaultdict(int)
    for p in scored:
        e = p.entry
        for c in by_tenant.get(e.tenant_id, ()):
            if challenge_counts(c.starts_at, c.ends_at, c.content_ids, e.occurred_at, e.content_id):
                deltas[(c.id, e.tenant_id, e.employee_id)] += e.points
    if not deltas:
        return
    await session.execute(_UPSERT_CHALLENGE_TOTALS, rows_param([(*key, pts) for key, pts in deltas.items()]))


def challenge_counts(
    starts_at: datetime, ends_at: datetime, content_ids: Sequence[str] | None, at: datetime, content_id: str | None
) -> bool:
    if not (starts_at <= at < ends_at):
        return False
    return not content_ids or content_id in content_ids


# -- points.awarded ----------------------------------------------------------------------------------
# One ``points.awarded.v2`` per person per :func:`post` (a consumed batch, an admin's reversal), the
# person's entries summed; ``points.awarded.v1`` (one event per entry: a third of the consumer's time,
# one outbox row and one broker record per click) only for the tenants still listed in
# ``GAMIFICATION_POINTS_AWARDED_V1_TENANTS`` (docs/adr/0019-points-awarded-per-batch.md).
PUBLISHED_KINDS = ("award", "reversal")


@dataclass(slots=True)
class V1Tenants:
    """The tenants that still get ``points.awarded.v1`` beside v2 (``*``: every tenant)."""

    names: frozenset[str] = frozenset()

    def configure(self, setting: str) -> None:
        self.names = frozenset(n.strip() for n in setting.split(",") if n.strip())

    def __contains__(self, tenant_id: str) -> bool:
        return bool(self.names) and ("*" in self.names or tenant_id in self.names)


V1_TENANTS = V1Tenants()


# Built without pydantic's validation (``assembler``): every value below is computed here from the
# ledger's typed entries. A consumed batch of 5,000 clicks by 2,000 people publishes ~2,000 of them
# (3.5 -> 1.2 us each with its line).
_AWARDED_V2 = assembler(PointsAwardedV2)
_LINE = assembler(PointsOfAction)


def tallies(posted: Sequence[Posted]) -> list[tuple[str, PointsAwardedV2]]:
    """(tenant, ``points.awarded.v2``) for each person with award or reversal entries in ``posted``,
    in order of first appearance; each (action, kind) line in order of first appearance too."""
    people: dict[tuple[str, str], _Tally] = {}
    for p in posted:
        e = p.entry
        if e.entry_type not in PUBLISHED_KINDS:
            continue
        tally = people.get((e.tenant_id, e.employee_id))
        if tally is None:
            tally = people[(e.tenant_id, e.employee_id)] = _Tally(p.id, p.id, e.occurred_at, e.occurred_at)
        tally.add(p.id, e)
    return [
        (
            tenant_id,
            _AWARDED_V2(
                employee_id,
                t.points,
                t.entries,
                str(t.first_id),
                str(t.last_id),
                t.first_at,
                t.last_at,
                [_LINE(action, kind, n, pts, capped) for (action, kind), (n, pts, capped) in t.lines.items()],
            ),
        )
        for (tenant_id, employee_id), t in people.items()
    ]


@dataclass(slots=True)
class _Tally:
    first_id: int
    last_id: int
    first_at: datetime
    last_at: datetime
    entries: int = 0
    points: int = 0
    lines: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # -> [entries, points, capped]

    def add(self, entry_id: int, e: NewEntry) -> None:
        self.entries += 1
        self.points += e.points
        # comparisons, not min()/max(): a builtin call each, four times per entry
        if entry_id < self.first_id:
            self.first_id = entry_id
        elif entry_id > self.last_id:
            self.last_id = entry_id
        at = e.occurred_at
        if at < self.first_at:
            self.first_at = at
        elif at > self.last_at:
            self.last_at = at
        line = self.lines.get((e.action, e.entry_type))
        if line is None:
            line = self.lines[(e.action, e.entry_type)] = [0, 0, 0]
        line[0] += 1
        line[1] += e.points
        line[2] += e.capped


def _v1(p: Posted) -> PointsAwarded:
    e = p.entry
    return PointsAwarded(
        employee_id=e.employee_id,
        entry_id=str(p.id),
        points=e.points,
        action=e.action,
        cause_event_id=e.event_id,
        rule_version=e.rule_version,
        occurred_at=e.occurred_at,
        kind=e.entry_type,
        capped=e.capped,
        reverses_entry_id=str(e.reverses_id) if e.reverses_id is not None else None,
        reason=e.reason,
    )


def awarded_events(posted: Sequence[Posted]) -> list[Envelope[Any]]:
    """The ``points.awarded`` events of ``posted``: v2 per person, v1 per entry for the listed tenants."""
    events: list[Envelope[Any]] = [new_event(SOURCE, t, data) for t, data in tallies(posted)]
    if V1_TENANTS.names:
        events += [
            new_event(SOURCE, p.entry.tenant_id, _v1(p))
            for p in posted
            if p.entry.entry_type in PUBLISHED_KINDS and p.entry.tenant_id in V1_TENANTS
        ]
    return events


# -- reversals ---------------------------------------------------------------------------------------
async def reverse(
    session: AsyncSession,
    awards: Sequence[Any],
    *,
    reason: str,
) -> list[Posted]:
    """Append a reversal for each award row (``ledger`` rows not reversed yet). The leaderboard loses
    the award's points; the balance loses them as far as it goes (see domain.reversal_balance_change)."""
    if not awards:
        return []
    balances = await lock_balances(session, {(a.tenant_id, a.employee_id) for a in awards})
    entries = []
    for a in sorted(awards, key=lambda a: a.id):
        key = (a.tenant_id, a.employee_id)
        delta = domain.reversal_balance_change(a.points, balances[key])
        balances[key] += delta
        entries.append(
            NewEntry(
                tenant_id=a.tenant_id,
                employee_id=a.employee_id,
                event_id=f"reversal:{a.id}",
                rule_version=a.rule_version,
                entry_type="reversal",
                action=a.action,
                detail=a.detail,
                ref=a.ref,
                content_id=a.content_id,
                points=-a.points,
                balance_delta=delta,
                occurred_at=a.occurred_at,
                reverses_id=a.id,
                reason=reason,
            )
        )
    return await post(session, entries)


def unreversed_awards() -> sa.Select[Any]:
    """Award rows with no reversal yet (callers add their own conditions)."""
    rev = LEDGER.alias("rev")
    return sa.select(LEDGER).where(
        LEDGER.c.entry_type == "award",
        ~sa.exists().where(rev.c.reverses_id == LEDGER.c.id),
    )


# -- a new calendar ------------------------------------------------------------------------------
async def rebuild_windows(session: AsyncSession, tenant_id: str, zone: str, week_starts_on: int) -> None:
    """The tenant's time zone or first day of the week changed: recompute its week and month totals
    (and their score counts) from the ledger, under the tenant's exclusive board lock."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(tenant_lock_key(tenant_id))))
    for tbl in (TOTALS, SCORE_COUNTS, BOARDS):
        await session.execute(sa.delete(tbl).where(tbl.c.tenant_id == tenant_id, tbl.c.window.in_(("week", "month"))))
    local = sa.cast(sa.func.timezone(zone, LEDGER.c.occurred_at), sa.Date)
    back = (sa.cast(sa.extract("isodow", local), sa.Integer) - 1 - week_starts_on + 7) % 7
    starts = {"week": local - back, "month": sa.cast(sa.func.date_trunc("month", local), sa.Date)}
    member = sa.and_(MEMBERS.c.tenant_id == LEDGER.c.tenant_id, MEMBERS.c.employee_id == LEDGER.c.employee_id)
    ranked = ranked_member()
    for window, start in starts.items():
        sums = (
            sa.select(
                sa.literal(tenant_id).label("tenant_id"),
                sa.literal(window).label("window"),
                start.label("window_start"),
                LEDGER.c.employee_id,
                sa.func.max(MEMBERS.c.team).label("team"),
                sa.func.sum(LEDGER.c.points).label("points"),
                sa.func.bool_and(ranked).label("ranked"),
            )
            .select_from(LEDGER.outerjoin(MEMBERS, member))
            .where(LEDGER.c.tenant_id == tenant_id, LEDGER.c.points != 0)
            .group_by(start, LEDGER.c.employee_id)
        )
        await session.execute(
            sa.insert(TOTALS).from_select(
                ["tenant_id", "window", "window_start", "employee_id", "team", "points", "ranked"], sums
            )
        )
    await session.execute(
        sa.insert(BOARDS).from_select(
            ["tenant_id", "window", "window_start"],
            sa.select(TOTALS.c.tenant_id, TOTALS.c.window, TOTALS.c.window_start)
            .where(TOTALS.c.tenant_id == tenant_id, TOTALS.c.window.in_(("week", "month")))
            .distinct(),
        )
    )
    await session.execute(
        sa.insert(SCORE_COUNTS).from_select(
            ["tenant_id", "window", "window_start", "points", "count"],
            sa.select(TOTALS.c.tenant_id, TOTALS.c.window, TOTALS.c.window_start, TOTALS.c.points, sa.func.count())
            .where(TOTALS.c.tenant_id == tenant_id, TOTALS.c.window.in_(("week", "month")), TOTALS.c.ranked)
            .group_by(TOTALS.c.tenant_id, TOTALS.c.window, TOTALS.c.window_start, TOTALS.c.points),
        )
    )
    await notify_boards(session, [tenant_id])
