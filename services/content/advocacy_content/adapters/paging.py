"""Keyset cursors: the values of the last row of a page, checked when they come back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from advocacy_common.errors import Unprocessable


def parse_cursor(values: list[Any], *parsers: Callable[[Any], Any]) -> tuple[Any, ...]:
    """Apply one parser per position; anything malformed is a 422 on ``cursor``."""
    if len(values) != len(parsers):
        raise Unprocessable.field("cursor", "invalid cursor")
    try:
        return tuple(p(v) for p, v in zip(parsers, values, strict=True))
    except (TypeError, ValueError) as e:
        raise Unprocessable.field("cursor", "invalid cursor") from e


def as_time(v: Any) -> datetime:
    if not isinstance(v, str):
        raise ValueError("not a time")
    t = datetime.fromisoformat(v)
    if t.tzinfo is None:
        raise ValueError("naive time")
    return t


def as_str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("not a string")
    return v


def as_int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError("not an integer")
    return v
