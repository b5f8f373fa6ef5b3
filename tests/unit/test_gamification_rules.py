from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from advocacy_gamification.domain.rules import (
    DEFAULT_BODY,
    AwardFact,
    RulesBody,
    RulesIn,
    RuleVersion,
    score,
    version_at,
)
from advocacy_gamification.features.badges import Stats, earned, next_streak

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_defaults_are_the_documented_ones() -> None:
    b = DEFAULT_BODY
    assert (b.points.share, b.points.click, b.points.suggestion_approved) == (10, 1, 15)
    assert (b.points.conversion.signup, b.points.conversion.lead, b.points.conversion.sale) == (20, 30, 50)
    assert all(b.daily_caps.cap(a) is None for a in ("share", "click", "conversion", "suggestion_approved"))
    assert b.points_for("conversion", "lead", None, T0) == 30
    assert b.points_for("conversion", "refund", None, T0) == 0  # unknown kind earns nothing


@pytest.mark.parametrize(
    "body",
    [
        {"points": {"share": -1}},
        {"daily_caps": {"click": 0}},
        {"multipliers": [{"factor": "0"}]},
        {"multipliers": [{"factor": "10.5"}]},
        {"multipliers": [{"factor": "2", "starts_at": "2026-01-01T00:00:00"}]},  # no offset
        {"multipliers": [{"factor": "2", "actions": ["hug"]}]},
        {"badges": {"share_milestone": 0}},
        {"surprise": 1},
        # issue 12: a content id had no length bound (a 1 MiB rule set, cached 4,096 times)
        {"multipliers": [{"factor": "2", "content_ids": ["c" * 201]}]},
        {"multipliers": [{"factor": "2", "content_ids": [""]}]},
    ],
)
def test_bad_rules_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RulesIn.model_validate(body)


def test_multipliers_best_factor_wins_and_rounds_half_up() -> None:
    body = RulesBody.model_validate(
        {
            "points": {"click": 1, "share": 3},
            "multipliers": [
                {"factor": "1.5", "actions": ["share"]},
                {
                    "factor": "2",
                    "content_ids": ["c9"],
                    "starts_at": T0.isoformat(),
                    "ends_at": (T0 + timedelta(days=1)).isoformat(),
                },
            ],
        }
    )
    assert body.points_for("share", None, "c1", T0) == 5  # 4.5 -> 5
    assert body.points_for("share", None, "c9", T0) == 6  # 2 beats 1.5
    assert body.points_for("share", None, "c9", T0 + timedelta(days=1)) == 5  # campaign over (end exclusive)
    assert body.points_for("click", None, "c1", T0) == 1
    assert body.factor("click", "c9", T0 - timedelta(seconds=1)) == Decimal(1)


def test_version_in_effect_when_the_event_occurred() -> None:
    v1 = RuleVersion(1, T0, DEFAULT_BODY)
    v2 = RuleVersion(2, T0 + timedelta(hours=1), DEFAULT_BODY)
    assert version_at([v1, v2], T0 - timedelta(seconds=1)).version == 0
    assert version_at([v2, v1], T0).version == 1
    assert version_at([v1, v2], T0 + timedelta(hours=2)).version == 2


def test_caps_count_per_tenant_day_and_reversed_awards_still_take_a_place() -> None:
    body = RulesBody.model_validate({"daily_caps": {"click": 2}})
    tokyo = ZoneInfo("Asia/Tokyo")
    # 14:00 UTC = 23:00 Tokyo; 15:30 UTC = 00:30 Tokyo the next day
    facts = [
        AwardFact("a", "click", None, None, T0 + timedelta(hours=2), reversed=True),
        AwardFact("a", "click", None, None, T0 + timedelta(hours=2, minutes=1)),
        AwardFact("a", "click", None, None, T0 + timedelta(hours=2, minutes=2)),
        AwardFact("a", "click", None, None, T0 + timedelta(hours=3, minutes=30)),
        AwardFact("b", "click", None, None, T0 + timedelta(hours=2)),
    ]
    assert score(facts, body, tokyo) == {"a": 2, "b": 1}
    assert score(facts, body, ZoneInfo("UTC")) == {"a": 1, "b": 1}


@given(st.lists(st.integers(0, 60), max_size=40), st.integers(1, 5))
def test_a_cap_bounds_every_day(minutes: list[int], cap: int) -> None:
    body = RulesBody.model_validate({"daily_caps": {"share": cap}})
    facts = [AwardFact("a", "share", None, None, T0 + timedelta(minutes=m)) for m in minutes]
    assert score(facts, body, ZoneInfo("UTC")).get("a", 0) == 10 * min(cap, len(minutes))


def test_streaks_count_consecutive_weeks() -> None:
    w = T0.date()
    s, last = next_streak(0, None, w)
    assert (s, last) == (1, w)
    assert next_streak(1, w, w) == (1, w)
    assert next_streak(1, w, w + timedelta(days=7)) == (2, w + timedelta(days=7))
    assert next_streak(3, w, w + timedelta(days=14)) == (1, w + timedelta(days=14))
    assert next_streak(3, w, w - timedelta(days=7)) == (3, w)  # a late event from an earlier week


def test_badges_at_thresholds() -> None:
    t = DEFAULT_BODY.badges
    assert earned(t, Stats()) == set()
    assert earned(t, Stats(shares=1)) == {"first_share"}
    assert earned(t, Stats(shares=10, clicks=100, conversions=1, streak_weeks=4)) == {
        "first_share",
        "share_milestone",
        "click_milestone",
        "first_conversion",
        "sharing_streak",
    }
    off = RulesBody.model_validate({"badges": {"first_share": None, "share_milestone": 2}}).badges
    assert earned(off, Stats(shares=2)) == {"share_milestone"}


def test_multiplier_times_are_bounded_when_sent_but_a_stored_rule_set_still_reads() -> None:
    forever = {"multipliers": [{"factor": "2", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "9999-12-31T23:59:59Z"}]}
    with pytest.raises(ValidationError, match="between the years 1900 and 9000"):
        RulesIn.model_validate(forever)
    with pytest.raises(ValidationError, match="between the years 1900 and 9000"):
        RulesIn.model_validate({"multipliers": [{"factor": "2", "starts_at": "0001-01-01T00:00:00+01:00"}]})
    # stored before the bounds existed: the consumer and GET /v1/rules read it as it is
    stored = RulesBody.model_validate_json(RulesBody.model_validate(forever).model_dump_json())
    assert stored.multipliers[0].ends_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert stored.factor("share", None, T0) == Decimal(2)
