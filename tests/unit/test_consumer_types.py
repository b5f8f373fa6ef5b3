"""ConsumerSpec.types: what the runner leaves undecoded and unclaimed (issue 19, ADR 0021)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from advocacy_common.consumer import _decode, _Parsed
from advocacy_common.events import new_event
from advocacy_common.events.gamification import BadgeEarned
from advocacy_common.events.sharing import ShareClicked, Verdict

AT = datetime(2026, 12, 4, tzinfo=UTC)


def _record(headers: list[tuple[str, bytes]], value: bytes, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


def _of(data: Any, offset: int) -> ConsumerRecord[bytes, bytes]:
    env = new_event("/advocacy/test", "t1", data)
    return _record(env.headers(), env.value(), offset)


def test_only_the_handled_types_are_decoded_unknown_and_headerless_still_dead_letter() -> None:
    click = ShareClicked(
        click_id="c1", share_id="s1", code="k1", content_id="x", employee_id="ann", network="x",
        clicked_at=AT, verdict=Verdict.counted,
    )  # fmt: skip
    handled = _of(click, 0)
    ignored = _of(BadgeEarned(employee_id="ann", badge="b", earned_at=AT), 1)
    unknown = _record([*((k, v) for k, v in handled.headers if k != "ce_type"), ("ce_type", b"no.such.v1")], b"{}", 2)
    headerless = _record([(k, v) for k, v in handled.headers if k != "ce_type"], b"{}", 3)
    out = _decode([handled, ignored, unknown, headerless], frozenset({ShareClicked.TYPE.encode()}))
    assert [d.record.offset if isinstance(d, _Parsed) else (d[0].offset, d[1]) for d in out] == [
        0,
        (2, "unknown event type 'no.such.v1'"),
        (3, "missing header ce_type"),
    ]
    # without types, every record is decoded
    assert sum(isinstance(d, _Parsed) for d in _decode([handled, ignored])) == 2
