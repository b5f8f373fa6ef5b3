"""Pure aggregation rules: which counters a fact moves, on which day and key.

Every aggregate is a function of the facts as they finally stand (a click with its invalidation,
a conversion with its click's dimensions). The consumer reaches that state step by step, in any
order, and :class:`Deltas` describes each step; the rebuild replays the final facts through the
same functions. So a definition changed here changes live and rebuilt numbers alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

StatKey = tuple[str, date, str, str, str, str]  # tenant, day, employee, content, network, team
ConversionKey = tuple[str, date, str, str, str, str, str, str]  # ... + kind, currency
DimKey = tuple[str, date, str, str]  # tenant, day, dimension, value
DimConversionKey = tuple[str, date, str, str, str, str]  # tenant, day, dimension, value, kind, currency
SharerDayKey = tuple[str, str, date]  # tenant, employee, day

VERDICTS = ("counted", "bot", "duplicate", "self", "rate_limited", "invalidated")
#: A click's dimensions. ``reason``: why a click was not counted (a bot verdict's named reason, issue
#: 21: ``ua_not_browser``, ``known_crawler:<source>``, ``scanner_timing``...); "" for the others.
DIMENSIONS = ("country", "device", "referrer", "reason")
#: A sharer who has not shared for this many days is no longer active.
ACTIVE_DAYS = 30


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The tenant's calendar day of an instant: aggregates use the event's own time, in the tenant's zone."""
    return at.astimezone(zone).date()


def week_start(day: date, week_start_index: int) -> date:
    """First day of ``day``'s week; ``week_start_index`` 0 = Monday ... 6 = Sunday."""
    return day - timedelta(days=(day.weekday() - week_start_index) % 7)


@dataclass(frozen=True, slots=True)
class Share:
    tenant_id: str
    share_id: str
    employee_id: str
    content_id: str
    network: str
    team: str
    at: datetime
    audience_size: int


@dataclass(frozen=True, slots=True)
class Dims:
    """A click's dimensions; unknown is ``""``."""

    country: str = ""
    device: str = ""
    referrer: str = ""
    reason: str = ""

    def items(self) -> tuple[tuple[str, str], ...]:
        return (
            ("country", self.country),
            ("device", self.device),
            ("referrer", self.referrer),
            ("reason", self.reason),
        )


@dataclass(frozen=True, slots=True)
class Click:
    tenant_id: str
    click_id: str
    employee_id: str
    content_id: str
    network: str
    team: str
    at: datetime
    verdict: str
    dims: Dims
    invalidated: bool = False

    @property
    def effective_verdict(self) -> str:
        return effective_verdict(self.verdict, self.invalidated)


def effective_verdict(verdict: str, invalidated: bool) -> str:
    """Only a counted click can be invalidated; any other verdict stands."""
    return "invalidated" if invalidated and verdict == "counted" else verdict


@dataclass(frozen=True, slots=True)
class Conversion:
    tenant_id: str
    conversion_id: str
    click_id: str
    employee_id: str
    content_id: str
    network: str
    team: str
    at: datetime
    kind: str
    amount: Decimal = Decimal(0)
    currency: str = ""  # "" when the conversion carries no value


@dataclass(slots=True)
class Sum:
    """Conversions and their money (in one currency)."""

    count: int = 0
    amount: Decimal = Decimal(0)

    def add(self, count: int, amount: Decimal) -> None:
        self.count += count
        self.amount += amount


STAT_FIELDS = ("shares", "reach", *(f"clicks_{v}" for v in VERDICTS))
#: Where each verdict's counter sits in a stats row (after shares and reach) and in a dimension row.
STAT_SLOT = {v: 2 + i for i, v in enumerate(VERDICTS)}
DIM_SLOT = {v: i for i, v in enumerate(VERDICTS)}


@dataclass
class Deltas:
    """Increments per aggregate row; negative for a reversal (invalidation, erasure).

    Stats rows are lists in :data:`STAT_FIELDS` order (shares, reach, then the clicks per
    verdict); dimension rows hold the clicks per verdict in :data:`VERDICTS` order.
    """

    stats: dict[StatKey, list[int]] = field(default_factory=dict)
    conversions: defaultdict[ConversionKey, Sum] = field(default_factory=lambda: defaultdict(Sum))
    dim_clicks: dict[DimKey, list[int]] = field(default_factory=dict)
    dim_conversions: defaultdict[DimConversionKey, Sum] = field(default_factory=lambda: defaultdict(Sum))
    sharer_days: set[SharerDayKey] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.stats or self.conversions or self.dim_clicks or self.dim_conversions or self.sharer_days)

    def stat(self, key: StatKey) -> dict[str, int]:
        """A stats row by counter name (zeros left out)."""
        return {f: n for f, n in zip(STAT_FIELDS, self.stats.get(key, ()), strict=False) if n}

    def _stat_row(self, key: StatKey) -> list[int]:
        row = self.stats.get(key)
        if row is None:
            row = self.stats[key] = [0] * len(STAT_FIELDS)
        return row

    def _dim_row(self, key: DimKey) -> list[int]:
        row = self.dim_clicks.get(key)
        if row is None:
            row = self.dim_clicks[key] = [0] * len(VERDICTS)
        return row

    # -- facts ---------------------------------------------------------------------------------------
    def add_share(self, s: Share, zone: ZoneInfo, sign: int = 1) -> None:
        day = local_day(s.at, zone)
        row = self._stat_row((s.tenant_id, day, s.employee_id, s.content_id, s.network, s.team))
        row[0] += sign
        row[1] += sign * s.audience_size
        if sign > 0:
            self.sharer_days.add((s.tenant_id, s.employee_id, day))

    def add_click(self, c: Click, zone: ZoneInfo, sign: int = 1) -> None:
        self._move_of(c, zone, None, c.effective_verdict, sign)

    def add_clicks_on(
        self,
        tenant_id: str,
        day: date,
        employee_id: str,
        content_id: str,
        network: str,
        team: str,
        verdict: str,
        dims: Dims,
        n: int,
    ) -> None:
        """:meth:`add_click` ``n`` times, of clicks given by their fields, the (local) day of each and
        the verdict (effective): the consumer counts its batch's clicks by these first (a batch repeats
        them: a person's clicks on a share in a day), without a :class:`Click` each."""
        self._move_click(tenant_id, employee_id, content_id, network, team, day, dims, None, verdict, n)

    def invalidate(self, c: Click, zone: ZoneInfo) -> None:
        """A counted click (already aggregated as counted) becomes invalidated, in its own day."""
        if c.verdict == "counted":
            self._move_of(c, zone, "counted", "invalidated", 1)

    def _move_of(self, c: Click, zone: ZoneInfo, old: str | None, new: str, sign: int) -> None:
        """:meth:`_move_click` of a :class:`Click`, in its (local) day."""
        self._move_click(
            c.tenant_id, c.employee_id, c.content_id, c.network, c.team, local_day(c.at, zone), c.dims, old, new, sign
        )

    def _move_click(
        self,
        tenant: str,
        employee_id: str,
        content_id: str,
        network: str,
        team: str,
        day: date,
        dims: Dims,
        old: str | None,
        new: str,
        sign: int,
    ) -> None:
        # Once per consumed click (or key of clicks): the row lookups are written out (no helper
        # calls, no tuple of the dimensions), which halves its cost (5,000-click batches, harness).
        stats = self.stats
        key = (tenant, day, employee_id, content_id, network, team)
        row = stats.get(key)
        if row is None:
            row = stats[key] = [0] * len(STAT_FIELDS)
        row[STAT_SLOT[new]] += sign
        if old is not None:
            row[STAT_SLOT[old]] -= sign
        dim_clicks = self.dim_clicks
        new_slot = DIM_SLOT[new]
        old_slot = -1 if old is None else DIM_SLOT[old]
        for dim_key in (
            (tenant, day, "country", dims.country),
            (tenant, day, "device", dims.device),
            (tenant, day, "referrer", dims.referrer),
            (tenant, day, "reason", dims.reason),
        ):
            dim_row = dim_clicks.get(dim_key)
            if dim_row is None:
                dim_row = dim_clicks[dim_key] = [0] * len(VERDICTS)
            dim_row[new_slot] += sign
            if old_slot >= 0:
                dim_row[old_slot] -= sign

    def add_conversion(self, v: Conversion, zone: ZoneInfo, dims: Dims | None, sign: int = 1) -> None:
        """A conversion, and (when its click is known) its share of the click's dimensions."""
        day = local_day(v.at, zone)
        key = (v.tenant_id, day, v.employee_id, v.content_id, v.network, v.team, v.kind, v.currency)
        self.conversions[key].add(sign, sign * v.amount)
        if dims is not None:
            self.add_conversion_dims(v, zone, dims, sign)

    def add_conversion_dims(self, v: Conversion, zone: ZoneInfo, dims: Dims, sign: int = 1) -> None:
        day = local_day(v.at, zone)
        for d, value in dims.items():
            self.dim_conversions[(v.tenant_id, day, d, value, v.kind, v.currency)].add(sign, sign * v.amount)

    def add(self, other: Deltas) -> None:
        """Move by ``other``'s increments as well (as if its facts had been added here)."""
        _add_rows(self.stats, other.stats)
        _add_rows(self.dim_clicks, other.dim_clicks)
        _add_sums(self.conversions, other.conversions)
        _add_sums(self.dim_conversions, other.dim_conversions)
        self.sharer_days |= other.sharer_days


K = TypeVar("K")


def _add_rows(rows: dict[K, list[int]], more: dict[K, list[int]]) -> None:
    for key, counters in more.items():
        row = rows.get(key)
        if row is None:
            rows[key] = list(counters)
        else:
            for i, n in enumerate(counters):
                row[i] += n


def _add_sums(sums: defaultdict[K, Sum], more: dict[K, Sum]) -> None:
    for key, s in more.items():
        sums[key].add(s.count, s.amount)


#: Where each dimension sits in a stats key (and in a conversion key, which adds kind and currency).
STAT_KEY_POSITION = {"employee_id": 2, "content_id": 3, "network": 4, "team": 5}


def month_of(day: date) -> date:
    return day.replace(day=1)


def project_stats(
    stats: dict[Any, list[int]],
    columns: tuple[str, ...],
    monthly: bool,
    source: tuple[str, ...] = ("employee_id", "content_id", "network", "team"),
) -> dict[tuple[Any, ...], list[int]]:
    """Stats rows summed up to (tenant, day or month, *columns): what a roll-up table holds.
    ``source``: the columns of ``stats``' keys after tenant and day (or month), when ``stats`` is
    itself a projection holding ``columns`` (a coarser one has fewer rows to sum)."""
    pick = itemgetter(0, 1, *(2 + source.index(c) for c in columns))
    months: dict[date, date] = {}
    out: dict[tuple[Any, ...], list[int]] = {}
    for key, counters in stats.items():
        k = pick(key)
        if monthly:
            month = months.get(k[1])
            if month is None:
                month = months[k[1]] = month_of(k[1])
            k = (k[0], month, *k[2:])
        row = out.get(k)
        if row is None:
            out[k] = list(counters)  # a copy: added to in place below
        else:
            for i, n in enumerate(counters):
                if n:  # a click moves one counter of the row
                    row[i] += n
    return out


#: The groups ``ranking_clicks_monthly`` ranks by counted clicks.
RANKED_GROUPS = ("employee", "content")
_COUNTED = STAT_SLOT["counted"]


def project_ranking(stats: dict[StatKey, list[int]]) -> dict[tuple[str, str, date, str], int]:
    """Counted clicks summed up to (tenant, group_by, month, employee or content): what
    ``ranking_clicks_monthly`` holds. Keys whose counted clicks do not move are left out."""
    months: dict[date, date] = {}
    out: dict[tuple[str, str, date, str], int] = {}
    for key, counters in stats.items():
        n = counters[_COUNTED]
        if not n:
            continue
        month = months.get(key[1])
        if month is None:
            month = months[key[1]] = month_of(key[1])
        for k in ((key[0], "employee", month, key[2]), (key[0], "content", month, key[3])):
            out[k] = out.get(k, 0) + n
    return out


def project_ranking_yearly(
    monthly: dict[tuple[str, str, date, str], int],
    stats: Iterable[StatKey] = (),
    conversions: Iterable[ConversionKey] = (),
) -> dict[tuple[str, str, int, str], int]:
    """:func:`project_ranking`'s months summed up to (tenant, group_by, year, key): what
    ``ranking_clicks_yearly`` holds; and at 0 every other employee and content whose roll-up rows
    ``stats`` and ``conversions`` (a batch's keys) touch in a year: the list holds every group
    present in a year, those without counted clicks as rows at 0 (the ranking's tail, in key order)."""
    out: dict[tuple[str, str, int, str], int] = {}
    for (tenant, group_by, month, key), n in monthly.items():
        k = (tenant, group_by, month.year, key)
        out[k] = out.get(k, 0) + n
    for rows in (stats, conversions):
        for row in rows:
            tenant, year = row[0], row[1].year
            for k in ((tenant, "employee", year, row[2]), (tenant, "content", year, row[3])):
                if k not in out:
                    out[k] = 0
    return out


def yearly_bucket(clicks: int) -> int:
    """``ranking_clicks_yearly.bucket`` of a count: 8 x floor(log2) + the three bits after the
    leading one (an eighth of an octave; 1 -> 0, 2 -> 8, 3 -> 12, 8 -> 24, 9 -> 25), increasing
    with the count; 0 -> :data:`YEARLY_ZERO_BUCKET`, below every other."""
    if clicks == 0:
        return YEARLY_ZERO_BUCKET
    f = clicks.bit_length() - 1
    return 8 * f + ((clicks << 3) >> f) - 8


#: ``ranking_clicks_yearly.bucket`` of a row at 0 (the SQL's 8 x (-1) + 0 - 8): the groups present
#: in a year without counted clicks in it.
YEARLY_ZERO_BUCKET = -16


def project_conversions(
    conversions: dict[ConversionKey, Sum], columns: tuple[str, ...], monthly: bool
) -> dict[tuple[Any, ...], Sum]:
    """Conversion sums up to (tenant, day or month, *columns, kind, currency)."""
    positions = [STAT_KEY_POSITION[c] for c in columns]
    out: dict[tuple[Any, ...], Sum] = {}
    for key, s in conversions.items():
        period = month_of(key[1]) if monthly else key[1]
        k = (key[0], period, *(key[p] for p in positions), key[6], key[7])
        row = out.get(k)
        if row is None:
            out[k] = Sum(s.count, s.amount)
        else:
            row.add(s.count, s.amount)
    return out


def deltas_from_facts(
    zones: dict[str, ZoneInfo],
    shares: Iterable[Share] = (),
    clicks: Iterable[Click] = (),
    conversions: Iterable[tuple[Conversion, Dims | None]] = (),
    *,
    sign: int = 1,
) -> Deltas:
    """The aggregates of a set of facts as they stand (what a rebuild sums; ``sign=-1`` takes them out)."""
    d = Deltas()
    for s in shares:
        d.add_share(s, zones[s.tenant_id], sign)
    for c in clicks:
        d.add_click(c, zones[c.tenant_id], sign)
    for v, dims in conversions:
        d.add_conversion(v, zones[v.tenant_id], dims, sign)
    return d


def lapse_days(share_days: Iterable[date]) -> list[date]:
    """The days on which a sharer had gone ``ACTIVE_DAYS`` days without a share.

    Active on day t means a share on one of the days t-29 .. t. After a share on day d with the next
    share on day n, the sharer lapses on d+30 if n > d+30 (or there is no next share).
    """
    days = sorted(set(share_days))
    out = []
    for i, d in enumerate(days):
        nxt = days[i + 1] if i + 1 < len(days) else None
        if nxt is None or (nxt - d).days > ACTIVE_DAYS:
            out.append(d + timedelta(days=ACTIVE_DAYS))
    return out
