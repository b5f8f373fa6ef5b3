"""The one eligibility predicate (advocacy_common.eligibility): which reason refuses a share, and
that sharing's check agrees with content's board for every item, person, membership and wave set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advocacy_common import eligibility
from advocacy_common.eligibility import Reason, Viewer, WaveView
from advocacy_content import domain

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
EARLY = WaveView("w1", "pilot", NOW - timedelta(days=1), teams=frozenset({"b"}))
LATE = WaveView("w2", "later", NOW + timedelta(days=1), teams=frozenset({"a"}))


def code(
    *,
    status: str = "published",
    expires_at: datetime | None = None,
    audience: dict[str, list[str]] | None = None,
    team: str | None = "a",
    roles: frozenset[str] = frozenset(),
    enrolled: bool = True,
    waves: Sequence[WaveView] = (),
    employee_id: str = "e1",
    department: str | None = None,
    location: str | None = None,
    active: bool = True,
) -> str | None:
    found = eligibility.refusal(
        status=status,
        expires_at=expires_at,
        audience=audience or {},
        employee_id=employee_id,
        viewer=Viewer(team=team, programme_roles=roles, department=department, location=location),
        enrolled=enrolled,
        waves=waves,
        now=NOW,
        active=active,
    )
    return found.code if found else None


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, None),
        ({"audience": {"teams": ["a"]}}, None),
        ({"audience": {"teams": ["b"]}}, Reason.not_targeted),
        ({"audience": {"teams": ["b"]}, "team": None}, Reason.not_targeted),
        ({"audience": {"topics": ["ai"]}}, None),  # topics rank, never restrict
        ({"audience": {"programme_roles": ["champion"]}}, Reason.not_enrolled),
        ({"audience": {"programme_roles": ["champion"]}, "roles": frozenset({"champion"})}, None),
        ({"enrolled": False}, Reason.opted_out),
        ({"waves": [EARLY]}, Reason.not_in_wave),
        ({"waves": [EARLY], "team": "b"}, None),
        ({"waves": [EARLY, LATE]}, Reason.wave_not_started),
        ({"waves": [LATE], "employee_id": "x", "team": "c"}, Reason.not_in_wave),
        ({"expires_at": NOW}, Reason.expired),
        ({"expires_at": NOW + timedelta(seconds=1)}, None),
        ({"status": "expired"}, Reason.expired),
        ({"status": "archived"}, Reason.not_published),
        # the item first, then the person's gate, then the audience
        ({"status": "expired", "enrolled": False, "audience": {"teams": ["b"]}}, Reason.expired),
        ({"enrolled": False, "audience": {"teams": ["b"]}}, Reason.opted_out),
        # the directory's department and location (issue 17)
        ({"audience": {"departments": ["sales"]}, "department": "sales"}, None),
        ({"audience": {"departments": ["sales"]}, "department": "legal"}, Reason.not_targeted),
        ({"audience": {"departments": ["sales"]}}, Reason.not_targeted),  # no department: not in any
        ({"audience": {"locations": ["Lyon", "Oslo"]}, "location": "Oslo"}, None),
        ({"audience": {"locations": ["Lyon"]}, "location": "Oslo"}, Reason.not_targeted),
        ({"audience": {"departments": ["sales"], "locations": ["Lyon"]}, "department": "sales"}, Reason.not_targeted),
        # deactivated in the directory: refused before anything else is looked at
        ({"active": False}, Reason.inactive),
        ({"active": False, "status": "expired", "enrolled": False}, Reason.inactive),
    ],
)
def test_the_reason_a_share_is_refused(kw: dict[str, object], expected: str | None) -> None:
    assert code(**kw) == expected  # type: ignore[arg-type]


def test_the_refusals_say_which_dimension_and_that_a_deactivated_person_cannot_share() -> None:
    def message(audience: dict[str, list[str]], viewer: Viewer, active: bool = True) -> str:
        found = eligibility.refusal(
            status="published",
            expires_at=None,
            audience=audience,
            employee_id="e1",
            viewer=viewer,
            enrolled=True,
            waves=[],
            now=NOW,
            active=active,
        )
        assert found is not None
        return found.message

    assert "departments" in message({"departments": ["x"]}, Viewer(team="a", department="y"))
    assert "locations" in message({"locations": ["x"]}, Viewer(team="a", location="y"))
    assert "deactivated" in message({}, Viewer(team="a"), active=False)


def test_every_refusal_has_a_known_code_and_a_message() -> None:
    found = eligibility.refusal(
        status="published",
        expires_at=None,
        audience={"teams": ["b"]},
        employee_id="e1",
        viewer=Viewer(team="a"),
        enrolled=True,
        waves=[],
        now=NOW,
    )
    assert found is not None and found.code in Reason.ALL and found.message


# -- sharing's check agrees with content's board ------------------------------------------------------
TEAMS = st.sampled_from(["a", "b", "c"])
ROLES = st.sampled_from(domain.PROGRAMME_ROLES)
EMPLOYEES = st.sampled_from(["e1", "e2", "e3"])
WAVES = st.lists(
    st.builds(
        WaveView,
        id=st.sampled_from(["w1", "w2", "w3"]),
        name=st.just("wave"),
        starts_at=st.sampled_from([NOW - timedelta(days=1), NOW, NOW + timedelta(seconds=1)]),
        teams=st.frozensets(TEAMS, max_size=2),
        employees=st.frozensets(EMPLOYEES, max_size=2),
    ),
    max_size=3,
)


def board_shows(
    *,
    status: str,
    expires_at: datetime | None,
    audience: dict[str, list[str]],
    employee_id: str,
    viewer: Viewer,
    enrolled: bool,
    waves: Sequence[WaveView],
) -> bool:
    """Content's employee board, as features/board.py composes it: the gate, then published and
    unexpired items whose audience matches (the SQL mirrors these; test_content_board holds them)."""
    gate = domain.board_gate(employee_id=employee_id, team=viewer.team, enrolled=enrolled, waves=waves, now=NOW)
    return gate.open and domain.visible_on_board(status, expires_at, NOW) and domain.audience_matches(audience, viewer)


@settings(max_examples=400, deadline=None)
@given(
    status=st.sampled_from(domain.Status.ALL),
    expires_at=st.sampled_from([None, NOW - timedelta(seconds=1), NOW, NOW + timedelta(hours=1)]),
    teams=st.lists(TEAMS, max_size=2),
    roles=st.lists(ROLES, max_size=2),
    topics=st.lists(st.sampled_from(["ai", "hr"]), max_size=2),
    employee_id=EMPLOYEES,
    team=st.none() | TEAMS,
    held=st.frozensets(ROLES),
    enrolled=st.booleans(),
    waves=WAVES,
)
def test_sharing_refuses_exactly_what_the_board_hides(
    status: str,
    expires_at: datetime | None,
    teams: list[str],
    roles: list[str],
    topics: list[str],
    employee_id: str,
    team: str | None,
    held: frozenset[str],
    enrolled: bool,
    waves: list[WaveView],
) -> None:
    audience = {"teams": teams, "programme_roles": roles, "topics": topics}
    viewer = Viewer(team=team, programme_roles=held)
    found = eligibility.refusal(
        status=status,
        expires_at=expires_at,
        audience=audience,
        employee_id=employee_id,
        viewer=viewer,
        enrolled=enrolled,
        waves=waves,
        now=NOW,
    )
    shown = board_shows(
        status=status,
        expires_at=expires_at,
        audience=audience,
        employee_id=employee_id,
        viewer=viewer,
        enrolled=enrolled,
        waves=waves,
    )
    assert (found is None) is shown, found
    if found is not None:
        assert found.code in Reason.ALL


@pytest.mark.parametrize(
    ("directory", "token", "team"),
    [("north", "south", "north"), (None, "south", "south"), ("", "south", "south"), ("", None, None)],
)
def test_the_directory_team_wins_when_it_names_one(directory: str | None, token: str | None, team: str | None) -> None:
    """A blank team from the directory (a SCIM client may send ``department: ""``) names none: the
    token's team is judged, by content's board and sharing's check alike."""
    assert eligibility.team_of(directory, token) == team
