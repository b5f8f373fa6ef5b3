"""Cursor pagination: ``?limit=`` (default 50, max 200) and an opaque ``?cursor=``."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query
from pydantic import BaseModel

from advocacy_common.errors import Unprocessable

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


MAX_CURSOR_VALUES = 8


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded))
    except Exception as e:
        raise Unprocessable.field("cursor", "invalid cursor") from e
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_CURSOR_VALUES:
        raise Unprocessable.field("cursor", "invalid cursor")  # no page writes an empty or long cursor
    return values


# -- reading a cursor back: one parser per position; anything else is a 422 on ``cursor`` -----------------
# A cursor comes back from the client: any JSON list could arrive. Each value is checked for the type
# and the range the query binds it as (a BIGINT, a timestamptz, a bounded text), so nothing a client
# writes reaches the database as a value it cannot take (an integer past int64 was a 500).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_OFFSET = 1_000_000_000
MAX_TEXT = 500


def parse_cursor(values: list[Any], *parsers: Callable[[Any], Any]) -> tuple[Any, ...]:
    """Apply one parser per position; anything malformed is a 422 on ``cursor``."""
    if len(values) != len(parsers):
        raise Unprocessable.field("cursor", "invalid cursor")
    try:
        return tuple(p(v) for p, v in zip(parsers, values, strict=True))
    except (TypeError, ValueError, OverflowError) as e:
        raise Unprocessable.field("cursor", "invalid cursor") from e


def as_time(v: Any) -> datetime:
    """An ISO 8601 instant with its offset (what :func:`encode_cursor` of an aware datetime wrote)."""
    if not isinstance(v, str) or len(v) > 64:
        raise ValueError("not a time")
    t = datetime.fromisoformat(v)
    if t.tzinfo is None:
        raise ValueError("naive time")
    return t


def as_str(v: Any) -> str:
    """A text key (PostgreSQL text holds no NUL)."""
    if not isinstance(v, str) or len(v) > MAX_TEXT or "\x00" in v:
        raise ValueError("not a key")
    return v


def as_int(v: Any) -> int:
    """A BIGINT key."""
    if not isinstance(v, int) or isinstance(v, bool) or not INT64_MIN <= v <= INT64_MAX:
        raise ValueError("not a 64-bit integer")
    return v


def as_offset(v: Any) -> int:
    """A position in a list computed in memory (0 .. :data:`MAX_OFFSET`)."""
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_OFFSET:
        raise ValueError("not an offset")
    return v


class PageParams(BaseModel):
    limit: int
    cursor: list[Any] | None


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(_page_params)]
