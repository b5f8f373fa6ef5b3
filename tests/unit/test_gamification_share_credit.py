"""Share points once per employee and content item by default (issue 13), per network when a
tenant's rules say so; the simulation model (rules.score) applies the same rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from advocacy_gamification.domain.rules import DEFAULT_BODY, AwardFact, RulesBody, score

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def share(employee: str, content: str, minutes: int = 0) -> AwardFact:
    return AwardFact(employee, "share", None, content, T0 + timedelta(minutes=minutes))


def test_the_default_credits_a_share_once_per_content_item() -> None:
    assert DEFAULT_BODY.share_points_per == "content"
    facts = [share("alice", "c1", 0), share("alice", "c1", 1), share("alice", "c1", 2), share("alice", "c2", 3)]
    assert score(facts, DEFAULT_BODY, UTC_ZONE) == {"alice": 20}
    assert score(facts, RulesBody(share_points_per="network"), UTC_ZONE) == {"alice": 40}


def test_only_shares_are_credited_once_and_each_person_is_credited_for_themselves() -> None:
    clicks = [AwardFact("alice", "click", None, "c1", T0 + timedelta(minutes=i)) for i in range(3)]
    facts = [share("alice", "c1"), share("bob", "c1", 1), *clicks]
    assert score(facts, DEFAULT_BODY, UTC_ZONE) == {"alice": 13, "bob": 10}


def test_credit_before_the_facts_counts() -> None:
    assert score([share("alice", "c1")], DEFAULT_BODY, UTC_ZONE, {("alice", "share", "c1")}) == {"alice": 0}


def test_a_capped_share_credits_nothing_so_a_later_one_may() -> None:
    body = RulesBody.model_validate({"daily_caps": {"share": 1}})
    facts = [share("alice", "c0"), share("alice", "c1", 1), share("alice", "c1", 60 * 24)]
    assert score(facts, body, UTC_ZONE) == {"alice": 20}  # c0; c1 capped on day 1; c1 on day 2


def test_stored_rules_without_the_field_read_as_the_new_default_and_bad_values_are_refused() -> None:
    assert RulesBody.model_validate({"points": {"share": 5}}).share_points_per == "content"
    with pytest.raises(ValidationError):
        RulesBody.model_validate({"share_points_per": "click"})


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["c1", "c2", "c3"])), max_size=30))
def test_per_content_is_ten_points_per_distinct_item(pairs: list[tuple[str, str]]) -> None:
    facts = [share(e, c, i) for i, (e, c) in enumerate(pairs)]
    got = score(facts, DEFAULT_BODY, UTC_ZONE)
    for e in {e for e, _ in pairs}:
        assert got[e] == 10 * len({c for x, c in pairs if x == e})
        assert score(facts, RulesBody(share_points_per="network"), UTC_ZONE)[e] == 10 * sum(
            1 for x, _ in pairs if x == e
        )
