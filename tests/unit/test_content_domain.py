"""Content's pure rules: audience matching, board ordering, roll-out gate, captions, review, coaching."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from advocacy_common.policy import BLOCKED_TERM, MISSING_DISCLOSURE, Policy
from advocacy_content import domain
from advocacy_content.domain import Viewer, WaveView

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


# -- audience -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("audience", "viewer", "sees"),
    [
        ({}, Viewer(team=None), True),
        ({"teams": [], "programme_roles": [], "topics": ["ai"]}, Viewer(team=None), True),  # topics rank only
        ({"teams": ["sales"]}, Viewer(team="sales"), True),
        ({"teams": ["sales"]}, Viewer(team="support"), False),
        ({"teams": ["sales"]}, Viewer(team=None), False),
        ({"teams": ["sales", "support"]}, Viewer(team="support"), True),
        ({"programme_roles": ["champion"]}, Viewer(team="x"), False),
        ({"programme_roles": ["champion"]}, Viewer(team="x", programme_roles=frozenset({"champion"})), True),
        ({"programme_roles": ["creator", "champion"]}, Viewer(team="x", programme_roles=frozenset({"sharer"})), False),
        (
            {"teams": ["sales"], "programme_roles": ["sharer"]},
            Viewer(team="sales", programme_roles=frozenset({"sharer"})),
            True,
        ),
        (
            {"teams": ["sales"], "programme_roles": ["sharer"]},
            Viewer(team="support", programme_roles=frozenset({"sharer"})),
            False,
        ),
    ],
)
def test_audience_matches(audience: dict[str, list[str]], viewer: Viewer, sees: bool) -> None:
    assert domain.audience_matches(audience, viewer) is sees


def test_only_published_unexpired_items_are_on_the_board() -> None:
    assert domain.visible_on_board("published", None, NOW)
    assert domain.visible_on_board("published", NOW + timedelta(seconds=1), NOW)
    assert not domain.visible_on_board("published", NOW, NOW)
    for status in ("draft", "scheduled", "expired", "archived", "pending_review", "rejected"):
        assert not domain.visible_on_board(status, None, NOW)


# -- ordering -----------------------------------------------------------------------------------------
def test_unshared_then_followed_topic_then_new_first() -> None:
    viewer = Viewer(team="sales", topics=frozenset({"ai"}))
    fresh, old = NOW - timedelta(hours=1), NOW - timedelta(days=10)
    items = {
        # name: (published_at, topics, shared)
        "all_three": (fresh, ["ai"], False),
        "followed_old": (old, ["ai"], False),
        "new_other_topic": (fresh, ["cars"], False),
        "old_unfollowed": (old, [], False),
        "shared_new_followed": (fresh, ["ai"], True),
        "shared_old": (old, [], True),
    }

    def key(name: str) -> tuple[int, float, domain.Descending]:
        published, topics, shared = items[name]
        rel = domain.relevance(published_at=published, topics=topics, viewer=viewer, shared=shared, now=NOW)
        return domain.board_order_key(rel.score, published, name)

    names = list(items)
    random.Random(3).shuffle(names)
    assert sorted(names, key=key) == [
        "all_three",
        "followed_old",
        "new_other_topic",
        "old_unfollowed",
        "shared_new_followed",
        "shared_old",
    ]


def test_newness_window() -> None:
    v = Viewer(team=None)
    assert domain.relevance(
        published_at=NOW - domain.NEW_FOR + timedelta(seconds=1), topics=[], viewer=v, shared=False, now=NOW
    ).new
    assert not domain.relevance(published_at=NOW - domain.NEW_FOR, topics=[], viewer=v, shared=False, now=NOW).new


@given(
    a=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    b=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_an_unshared_item_always_outranks_a_shared_one(a: tuple[bool, bool, bool], b: tuple[bool, bool, bool]) -> None:
    ra, rb = domain.Relevance(*a), domain.Relevance(*b)
    if not ra.shared and rb.shared:
        assert ra.score > rb.score
    if ra.shared == rb.shared and ra.followed_topic and not rb.followed_topic:
        assert ra.score > rb.score


@given(ids=st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=10, unique=True))
@example(ids=["0", "00", "\U0010ffff"])
def test_ties_break_by_id_descending(ids: list[str]) -> None:
    ordered = sorted(ids, key=lambda i: domain.board_order_key(3, NOW, i))
    assert ordered == sorted(ids, reverse=True)


# -- roll-out gate --------------------------------------------------------------------------------------
def wave(name: str, starts: datetime, teams: set[str] | None = None, employees: set[str] | None = None) -> WaveView:
    return WaveView(
        id=name, name=name, starts_at=starts, teams=frozenset(teams or ()), employees=frozenset(employees or ())
    )


def test_no_waves_means_open_to_everyone() -> None:
    assert domain.board_gate(employee_id="a", team=None, enrolled=True, waves=[], now=NOW).open


def test_opting_out_closes_the_board_with_a_message() -> None:
    gate = domain.board_gate(employee_id="a", team="sales", enrolled=False, waves=[], now=NOW)
    assert not gate.open and gate.notice and "opted out" in gate.notice


def test_a_wave_that_has_not_started_closes_the_board_and_says_when() -> None:
    waves = [
        wave("pilot", NOW - timedelta(days=1), teams={"sales"}),
        wave("wave 2", NOW + timedelta(days=3), teams={"support"}),
    ]
    sales = domain.board_gate(employee_id="a", team="sales", enrolled=True, waves=waves, now=NOW)
    support = domain.board_gate(employee_id="b", team="support", enrolled=True, waves=waves, now=NOW)
    nobody = domain.board_gate(employee_id="c", team="legal", enrolled=True, waves=waves, now=NOW)
    assert sales.open and sales.wave is not None and sales.wave.name == "pilot"
    assert (
        not support.open
        and support.notice is not None
        and "wave 2" in support.notice
        and "2030-05-04" in support.notice
    )
    assert not nobody.open and nobody.notice is not None and "not been rolled out" in nobody.notice


def test_an_employee_named_in_an_earlier_wave_than_their_team_starts_then() -> None:
    waves = [
        wave("team", NOW + timedelta(days=5), teams={"sales"}),
        wave("early birds", NOW - timedelta(hours=1), employees={"a"}),
    ]
    assert domain.board_gate(employee_id="a", team="sales", enrolled=True, waves=waves, now=NOW).open
    assert not domain.board_gate(employee_id="z", team="sales", enrolled=True, waves=waves, now=NOW).open


# -- schedule -----------------------------------------------------------------------------------------
def test_schedule_rules() -> None:
    domain.check_schedule(None, None, NOW)
    domain.check_schedule(NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW)
    with pytest.raises(domain.RuleError) as e:
        domain.check_schedule(NOW + timedelta(hours=2), NOW + timedelta(hours=1), NOW)
    assert e.value.field == "expires_at"
    with pytest.raises(domain.RuleError):
        domain.check_schedule(None, NOW - timedelta(seconds=1), NOW)
    assert domain.initial_status(NOW, NOW + timedelta(seconds=1)) == "scheduled"
    assert domain.initial_status(NOW, NOW) == "published"
    assert domain.initial_status(NOW, None) == "published"


# -- captions -----------------------------------------------------------------------------------------
def test_captions_over_the_network_limit_are_errors_policy_breaches_are_issues() -> None:
    policy = Policy(blocked_terms=("secret",), required_disclosures={"linkedin": "#employee"})
    link = "https://s.example/r/abcdefgh"
    report = domain.check_captions(
        policy,
        {"x": "y" * 257, "linkedin": "our secret plan", "bluesky": "fine #employee"},
        link,
    )
    assert set(report.errors) == {"x"}  # 257 + space + 23 > 280
    assert [v.rule for v in report.issues["linkedin"]] == [BLOCKED_TERM, MISSING_DISCLOSURE]
    assert "bluesky" not in report.issues
    assert domain.check_captions(policy, {"x": "y" * 256}, link).errors == {}


# -- policy versions ------------------------------------------------------------------------------------
def test_policy_changes_name_what_changed() -> None:
    old = {
        "guidelines": "be nice",
        "blocked_terms": ["a", "b"],
        "required_disclosures": {"x": "#ad"},
        "allowed_domains": [],
        "max_lengths": {},
    }
    new = {**old, "blocked_terms": ["b", "c"], "required_disclosures": {"x": "#emp", "linkedin": "#emp"}}
    assert domain.policy_changes(old, new) == [
        {"field": "blocked_terms", "added": ["c"], "removed": ["a"]},
        {"field": "required_disclosures", "set": {"x": "#emp", "linkedin": "#emp"}, "removed": []},
    ]
    assert domain.policy_changes(old, old) == []
    assert domain.policy_changes(old, {**old, "guidelines": "be kind"})[0]["field"] == "guidelines"


# -- suggestions ----------------------------------------------------------------------------------------
def test_one_approval_suffices_unless_a_second_approver_is_required() -> None:
    one = domain.approve(
        status="pending_review", proposer_id="e", approvals=[], admin_id="a1", at=NOW, second_approver_required=False
    )
    assert one.approved
    first = domain.approve(
        status="pending_review", proposer_id="e", approvals=[], admin_id="a1", at=NOW, second_approver_required=True
    )
    assert not first.approved and [a["by"] for a in first.approvals] == ["a1"]
    with pytest.raises(domain.StateError):
        domain.approve(
            status="pending_review",
            proposer_id="e",
            approvals=first.approvals,
            admin_id="a1",
            at=NOW,
            second_approver_required=True,
        )
    second = domain.approve(
        status="pending_review",
        proposer_id="e",
        approvals=first.approvals,
        admin_id="a2",
        at=NOW,
        second_approver_required=True,
    )
    assert second.approved and [a["by"] for a in second.approvals] == ["a1", "a2"]


def test_no_self_approval_and_only_pending_suggestions() -> None:
    with pytest.raises(domain.StateError):
        domain.approve(
            status="pending_review",
            proposer_id="a1",
            approvals=[],
            admin_id="a1",
            at=NOW,
            second_approver_required=False,
        )
    with pytest.raises(domain.StateError):
        domain.approve(
            status="rejected", proposer_id="e", approvals=[], admin_id="a1", at=NOW, second_approver_required=False
        )


# -- coaching -------------------------------------------------------------------------------------------
def test_coaching_threads_are_private() -> None:
    assert domain.can_read_coaching(requester_id="e1", viewer_id="e1", roles=frozenset({"employee"}))
    assert domain.can_read_coaching(requester_id="e1", viewer_id="c", roles=frozenset({"coach"}))
    assert domain.can_read_coaching(requester_id="e1", viewer_id="a", roles=frozenset({"admin"}))
    assert not domain.can_read_coaching(requester_id="e1", viewer_id="e2", roles=frozenset({"employee"}))
    assert domain.coaching_reply_role(requester_id="e1", viewer_id="a", roles=frozenset({"admin"})) is None
    assert domain.coaching_reply_role(requester_id="e1", viewer_id="c", roles=frozenset({"coach"})) == "coach"


def test_topics_are_normalised() -> None:
    assert domain.normalize_topics([" AI ", "ai", "Machine   Learning", ""]) == ["ai", "machine learning"]
