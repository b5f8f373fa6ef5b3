"""Challenge dates are bounded (the fuzzer's year-1 challenge was a 500)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from advocacy_gamification.schemas import ChallengeIn

pytestmark = pytest.mark.unit

GOAL = {"kind": "top_n", "value": 3}


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        ("0001-01-01T00:00:00Z", "0189-07-31T11:15:01Z"),
        ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        # make fuzz, 2026-12-03: year 1 at a positive offset, whose UTC conversion overflowed (a 500)
        ("0001-01-01T00:01:00+00:11", "0222-11-23T00:00:01.0Z"),
    ],
)
def test_dates_outside_2000_2999_are_refused(starts: str, ends: str) -> None:
    with pytest.raises(ValidationError, match="between the years 2000 and 2999"):
        ChallengeIn.model_validate({"name": "x", "starts_at": starts, "ends_at": ends, "goal": GOAL})


def test_a_real_challenge_is_accepted() -> None:
    c = ChallengeIn.model_validate(
        {"name": "x", "starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-31T00:00:00Z", "goal": GOAL}
    )
    assert c.ends_at > c.starts_at
