"""Who may see, and so share, a content item: the one predicate the board and the share check use.

Pure: no I/O, no clock (``now`` is passed in). Content's board filters with it (its SQL mirrors
:func:`audience_matches`, and an integration test holds the two together); sharing refuses a share
with it, against the copies it keeps from content's events. Because both call the same function,
a share is refused exactly when the item is not on that employee's board.

The order of the checks decides which reason an employee is told: the person's standing in the
company's directory first (deactivated: nothing is theirs to share), then the item itself (expired),
then the person's programme gate (opted out, wave), then the item's audience (team, department,
location, programme role).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

PUBLISHED = "published"


class Reason:
    """Why an item is not on someone's board: the ``code`` of sharing's 403 error body."""

    expired = "expired"
    not_published = "not_published"
    opted_out = "opted_out"
    not_in_wave = "not_in_wave"
    wave_not_started = "wave_not_started"
    not_targeted = "not_targeted"  # the item is for other teams
    not_enrolled = "not_enrolled"  # the item is for programme roles the person does not hold
    inactive = "inactive"  # deactivated in the company's directory (SCIM ``active: false``, issue 17)

    ALL = (expired, not_published, opted_out, not_in_wave, wave_not_started, not_targeted, not_enrolled, inactive)


#: What a deactivated person is told when they try to share.
INACTIVE_MESSAGE = "your account is deactivated in your company's directory: you can no longer share"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Viewer:
    """An employee looking at the board: team from the company's directory when it names one (the
    token's otherwise); department and location from the directory; roles and topics from membership."""

    team: str | None
    programme_roles: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    department: str | None = None
    location: str | None = None


def team_of(directory_team: str | None, token_team: str | None) -> str | None:
    """The team the audience is judged by: the directory's when it names one (a blank one names
    none), the token's otherwise. Content's board and sharing's check both take it from here."""
    return directory_team if directory_team else token_team


def audience_matches(audience: Mapping[str, Iterable[str]], viewer: Viewer) -> bool:
    """Teams, departments, locations and programme roles restrict who sees an item: an empty
    dimension matches everyone, a non-empty one must contain the viewer's value (someone the
    directory gives no department is outside every department-targeted item). Topics do not
    restrict; they only rank."""
    return _audience_refusal(audience, viewer) is None


def _audience_refusal(audience: Mapping[str, Iterable[str]], viewer: Viewer) -> Refusal | None:
    teams = set(audience.get("teams") or ())
    if teams and (viewer.team is None or viewer.team not in teams):
        return Refusal(Reason.not_targeted, "this item is meant for other teams")
    departments = set(audience.get("departments") or ())
    if departments and (viewer.department is None or viewer.department not in departments):
        return Refusal(Reason.not_targeted, "this item is meant for other departments")
    locations = set(audience.get("locations") or ())
    if locations and (viewer.location is None or viewer.location not in locations):
        return Refusal(Reason.not_targeted, "this item is meant for other locations")
    roles = set(audience.get("programme_roles") or ())
    if roles and not roles & viewer.programme_roles:
        return Refusal(Reason.not_enrolled, "this item is meant for programme roles you are not enrolled in")
    return None


def visible_on_board(status: str, expires_at: datetime | None, now: datetime) -> bool:
    return _item_refusal(status, expires_at, now) is None


def _item_refusal(status: str, expires_at: datetime | None, now: datetime) -> Refusal | None:
    if status == "expired" or (expires_at is not None and expires_at <= now):
        return Refusal(Reason.expired, "this item has expired")
    if status != PUBLISHED:
        return Refusal(Reason.not_published, "this item is not published")
    return None


# -- roll-out gate ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WaveView:
    id: str
    name: str
    starts_at: datetime
    teams: frozenset[str] = frozenset()
    employees: frozenset[str] = frozenset()

    def includes(self, employee_id: str, team: str | None) -> bool:
        return employee_id in self.employees or (team is not None and team in self.teams)


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether the board is open for someone, and if not, the message that says why (``reason``:
    one of :class:`Reason`)."""

    open: bool
    notice: str | None = None
    wave: WaveView | None = None
    reason: str | None = None


def board_gate(*, employee_id: str, team: str | None, enrolled: bool, waves: Sequence[WaveView], now: datetime) -> Gate:
    """No waves: the programme is open to everyone. With waves: a person's board opens with the
    earliest wave that includes them; someone in no wave has not been rolled out to yet."""
    if not enrolled:
        return Gate(
            False,
            "You have opted out of the advocacy programme; opt in again to see the board.",
            None,
            Reason.opted_out,
        )
    if not waves:
        return Gate(True)
    mine = sorted((w for w in waves if w.includes(employee_id, team)), key=lambda w: w.starts_at)
    if not mine:
        return Gate(False, "The advocacy programme has not been rolled out to you yet.", None, Reason.not_in_wave)
    first = mine[0]
    if first.starts_at <= now:
        return Gate(True, None, first)
    when = first.starts_at.strftime("%Y-%m-%d %H:%M UTC")
    return Gate(
        False,
        f"Your wave '{first.name}' starts on {when}; the board opens for you then.",
        first,
        Reason.wave_not_started,
    )


# -- the whole question -------------------------------------------------------------------------------
def refusal(
    *,
    status: str,
    expires_at: datetime | None,
    audience: Mapping[str, Iterable[str]],
    employee_id: str,
    viewer: Viewer,
    enrolled: bool,
    waves: Sequence[WaveView],
    now: datetime,
    active: bool = True,
) -> Refusal | None:
    """Why the item is not on this employee's board at ``now``; None when it is (they may share it).
    ``active``: the directory's flag (True when the tenant has no directory or does not list them)."""
    if not active:
        return Refusal(Reason.inactive, INACTIVE_MESSAGE)
    item = _item_refusal(status, expires_at, now)
    if item is not None:
        return item
    gate = board_gate(employee_id=employee_id, team=viewer.team, enrolled=enrolled, waves=waves, now=now)
    if not gate.open:
        return Refusal(gate.reason or Reason.not_in_wave, gate.notice or "your board is not open")
    return _audience_refusal(audience, viewer)
