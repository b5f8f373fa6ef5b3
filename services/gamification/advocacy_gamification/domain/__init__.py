"""Pure rules: leaderboard windows, competition ranking, balance arithmetic, challenge winners, and
an in-memory ledger (:class:`Book`) that states the ledger's invariants and is the reference the
database implementation is tested against. Imports no FastAPI, no session, no Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

ALL_TIME_START = date(1970, 1, 1)
WINDOWS = ("all", "week", "month")
Window = Literal["all", "week", "month"]

VISIBILITIES = ("ranked", "anonymous", "hidden")
ANONYMOUS_NAME = "Anonymous"


# -- windows -----------------------------------------------------------------------------------------
def window_start(window: str, at: date, week_starts_on: int = 0) -> date:
    """First day of the window containing ``at`` (week_starts_on: 0 = Monday ... 6 = Sunday)."""
    if window == "all":
        return ALL_TIME_START
    if window == "week":
        return at - timedelta(days=(at.weekday() - week_starts_on) % 7)
    if window == "month":
        return at.replace(day=1)
    raise ValueError(f"unknown window {window!r}")


def window_end(window: str, start: date) -> date | None:
    """First day after the window (exclusive end), None for all time."""
    if window == "all":
        return None
    if window == "week":
        return start + timedelta(days=7)
    nxt = start.replace(day=28) + timedelta(days=4)
    return nxt.replace(day=1)


def local_date(at: datetime, zone: tzinfo = UTC) -> date:
    return at.astimezone(zone).date()


def windows_for(at: datetime, zone: tzinfo = UTC, week_starts_on: int = 0) -> list[tuple[str, date]]:
    """The (window, first day) rows an award at ``at`` counts in, by the tenant's calendar."""
    d = local_date(at, zone)
    return [(w, window_start(w, d, week_starts_on)) for w in WINDOWS]


def local_midnight(d: date, zone: tzinfo) -> datetime:
    """The instant (UTC) the tenant's day ``d`` begins."""
    return datetime.combine(d, time(0), zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class WindowSpan:
    window: str
    start: date
    end: date | None
    starts_at: datetime | None  # UTC instants of the tenant's local midnights; None for all time
    ends_at: datetime | None


def current_window(window: str, now: datetime, zone: tzinfo = UTC, week_starts_on: int = 0) -> WindowSpan:
    start = window_start(window, local_date(now, zone), week_starts_on)
    end = window_end(window, start)
    return WindowSpan(
        window=window,
        start=start,
        end=end,
        starts_at=None if window == "all" else local_midnight(start, zone),
        ends_at=local_midnight(end, zone) if end else None,
    )


# -- ranking -----------------------------------------------------------------------------------------
def competition_ranks(points: Sequence[int], first_rank: int = 1, before_equal: int = 0) -> list[int]:
    """Ranks for a page sorted by points descending ("1, 1, 3").

    ``first_rank`` is the rank of the page's first row (1 + rows with more points); rows with fewer
    points than the first get 1 + rows above them, ``before_equal`` being the rows on earlier
    pages with the same points as the first row.
    """
    ranks: list[int] = []
    for i, p in enumerate(points):
        if i > 0 and p == points[i - 1]:
            ranks.append(ranks[-1])
        elif i == 0:
            ranks.append(first_rank)
        else:
            ranks.append(first_rank + before_equal + i)
    return ranks


def points_bucket(points: int) -> int:
    """``points_totals.bucket``: the octave of the points, signed (0 -> 0, 1 -> 1, 2-3 -> 2, 4-7 -> 3,
    -1 -> -1, -3..-2 -> -2), never decreasing as the points grow. The rank indexes hold it instead of
    the points, so a total's update leaves them alone (a HOT update) until the points reach the next
    power of two. ``db.POINTS_BUCKET_SQL`` is the same in SQL."""
    n = abs(points).bit_length()
    return -n if points < 0 else n


def ranked_rows(rows: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """(id, points) in any order -> (id, points, rank) by points descending then id."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    ranks = competition_ranks([p for _, p in ordered])
    return [(i, p, r) for (i, p), r in zip(ordered, ranks, strict=True)]


def is_ranked(enrolled: bool, visibility: str, active: bool = True) -> bool:
    """On public boards and counted in others' ranks: enrolled, not hidden, and not deactivated in
    the company's directory."""
    return enrolled and visibility != "hidden" and active


def per_capita_divisor(directory_size: int | None, participants: int) -> int:
    """What the per-capita team board divides a team's points by: the directory's count of the
    team's active members when the directory knows the team (and counts anyone), else the ranked
    people gamification knows in the team. Never 0 for a listed team (the caller lists a team only
    when one of the two is positive)."""
    if directory_size is not None and directory_size > 0:
        return directory_size
    return max(participants, 1)


# -- challenges --------------------------------------------------------------------------------------
GoalKind = Literal["threshold", "top_n", "team_total"]


def challenge_winners(kind: str, value: int, rows: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """Winners from (employee or team, points): at or over the threshold; the top N by competition
    rank (ties at the boundary all win; nobody wins with 0 points); teams at or over the total."""
    ranked = ranked_rows(rows)
    if kind in ("threshold", "team_total"):
        return [r for r in ranked if r[1] >= value]
    if kind == "top_n":
        return [r for r in ranked if r[2] <= value and r[1] > 0]
    raise ValueError(f"unknown goal kind {kind!r}")


# -- balances ----------------------------------------------------------------------------------------
class InsufficientPoints(Exception):
    pass


def reversal_balance_change(points: int, balance: int) -> int:
    """What a reversal takes from the spendable balance: the award's points, but never more than is
    left (points already spent on a reward cannot be taken back; the leaderboard loses them all)."""
    return -min(max(points, 0), max(balance, 0))


def spend_balance_change(cost: int, balance: int) -> int:
    if cost > balance:
        raise InsufficientPoints(f"needs {cost} points, has {balance}")
    return -cost


# -- the reference model -----------------------------------------------------------------------------
EntryType = Literal["award", "reversal", "redemption", "refund"]


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    employee_id: str
    entry_type: EntryType
    event_id: str
    rule_version: int
    points: int  # effect on the leaderboard (earned points)
    balance_delta: int  # effect on the spendable balance
    reverses: int | None = None


@dataclass
class Redemption:
    id: str
    employee_id: str
    reward_id: str
    cost: int
    status: str = "pending"


@dataclass
class Book:
    """One tenant's ledger in memory. Every figure is a sum of entries; entries are only appended.

    - an award is unique per (event, rule version): a redelivery appends nothing;
    - a reversal happens once per award and takes its points off the leaderboard, and off the
      balance as far as the balance goes;
    - a redemption spends points and one item of stock or does nothing; one per idempotency key;
    - a cancelled redemption refunds through the ledger, once.
    """

    entries: list[Entry] = field(default_factory=list)
    stock: dict[str, int] = field(default_factory=dict)
    redemptions: dict[str, Redemption] = field(default_factory=dict)
    _keys: set[tuple[str, int]] = field(default_factory=set)
    _reversed: set[int] = field(default_factory=set)
    _by_key: dict[tuple[str, str], str] = field(default_factory=dict)

    def balance(self, employee_id: str) -> int:
        return sum(e.balance_delta for e in self.entries if e.employee_id == employee_id)

    def score(self, employee_id: str) -> int:
        return sum(e.points for e in self.entries if e.employee_id == employee_id)

    def _append(self, **kw: object) -> Entry:
        e = Entry(id=len(self.entries) + 1, **kw)  # type: ignore[arg-type]
        self.entries.append(e)
        return e

    def award(self, employee_id: str, event_id: str, rule_version: int, points: int) -> Entry | None:
        if points < 0:
            raise ValueError("awards are never negative")
        if (event_id, rule_version) in self._keys:
            return None
        self._keys.add((event_id, rule_version))
        return self._append(
            employee_id=employee_id,
            entry_type="award",
            event_id=event_id,
            rule_version=rule_version,
            points=points,
            balance_delta=points,
        )

    def reverse(self, cause_event_id: str) -> list[Entry]:
        """Reverse every award of ``cause_event_id`` not reversed yet."""
        out = []
        for a in [e for e in self.entries if e.entry_type == "award" and e.event_id == cause_event_id]:
            if a.id in self._reversed:
                continue
            self._reversed.add(a.id)
            out.append(
                self._append(
                    employee_id=a.employee_id,
                    entry_type="reversal",
                    event_id=f"reversal:{a.id}",
                    rule_version=a.rule_version,
                    points=-a.points,
                    balance_delta=reversal_balance_change(a.points, self.balance(a.employee_id)),
                    reverses=a.id,
                )
            )
        return out

    def redeem(self, employee_id: str, key: str, reward_id: str, cost: int) -> tuple[str, Redemption | None]:
        """-> ("created" | "replayed" | "key_reused" | "out_of_stock" | "insufficient_points", redemption)."""
        existing = self._by_key.get((employee_id, key))
        if existing is not None:
            if self.redemptions[existing].reward_id != reward_id:
                return "key_reused", None
            return "replayed", self.redemptions[existing]
        if self.stock.get(reward_id, 0) <= 0:
            return "out_of_stock", None
        try:
            delta = spend_balance_change(cost, self.balance(employee_id))
        except InsufficientPoints:
            return "insufficient_points", None
        rid = f"r{len(self.redemptions) + 1}"
        self.stock[reward_id] -= 1
        red = Redemption(rid, employee_id, reward_id, cost)
        self.redemptions[rid] = red
        self._by_key[(employee_id, key)] = rid
        self._append(
            employee_id=employee_id,
            entry_type="redemption",
            event_id=f"redemption:{rid}",
            rule_version=0,
            points=0,
            balance_delta=delta,
        )
        return "created", red

    def cancel(self, redemption_id: str) -> Entry | None:
        red = self.redemptions.get(redemption_id)
        if red is None or red.status != "pending":
            return None
        red.status = "cancelled"
        self.stock[red.reward_id] = self.stock.get(red.reward_id, 0) + 1
        return self._append(
            employee_id=red.employee_id,
            entry_type="refund",
            event_id=f"refund:{redemption_id}",
            rule_version=0,
            points=0,
            balance_delta=red.cost,
        )
