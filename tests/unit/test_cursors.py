"""Reading a cursor back (advocacy_common.pagination): each value checked for the type and range its
query binds, anything else a 422 on ``cursor``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.errors import Unprocessable
from advocacy_common.pagination import (
    INT64_MAX,
    INT64_MIN,
    as_int,
    as_offset,
    as_str,
    as_time,
    decode_cursor,
    encode_cursor,
    parse_cursor,
)

pytestmark = pytest.mark.unit

PARSERS = (as_time, as_str, as_int, as_offset)


def test_what_a_page_wrote_reads_back() -> None:
    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    values = decode_cursor(encode_cursor([at.isoformat(), "c-1", -5, 7]))
    assert parse_cursor(values, as_time, as_str, as_int, as_offset) == (at, "c-1", -5, 7)


@pytest.mark.parametrize(
    ("values", "parsers"),
    [
        (["x"], (as_int,)),
        ([2**63], (as_int,)),
        ([-(2**63) - 1], (as_int,)),
        ([True], (as_int,)),
        ([1.5], (as_int,)),
        ([-1], (as_offset,)),
        ([10**12], (as_offset,)),
        (["2024-01-01T00:00:00"], (as_time,)),
        ([1], (as_time,)),
        (["\x00"], (as_str,)),
        (["k" * 501], (as_str,)),
        ([None], (as_str,)),
        (["a", "b"], (as_str,)),
    ],
)
def test_a_value_its_query_cannot_bind_is_a_422(values: list[object], parsers: tuple[object, ...]) -> None:
    with pytest.raises(Unprocessable) as e:
        parse_cursor(values, *parsers)  # type: ignore[arg-type]
    assert e.value.details[0]["field"] == "cursor"


@pytest.mark.parametrize("raw", ["W10", "e30", "!!!", encode_cursor(list(range(9)))])
def test_an_empty_long_or_non_list_cursor_is_a_422(raw: str) -> None:
    with pytest.raises(Unprocessable):
        decode_cursor(raw)


@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)), max_size=4))
def test_any_json_list_parses_or_is_a_422(values: list[object]) -> None:
    for parser in PARSERS:
        try:
            parsed = parse_cursor(values, *([parser] * len(values)))
        except Unprocessable:
            continue  # refused: a 422, never another exception (a 500)
        for v in parsed:
            assert isinstance(v, datetime | str | int) and not isinstance(v, bool)
            assert not isinstance(v, int) or INT64_MIN <= v <= INT64_MAX
            assert not isinstance(v, datetime) or v.tzinfo is not None
