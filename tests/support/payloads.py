"""Event payloads for the decoders' agreement tests (the fast path, light data): samples of the hot
types, odd date-time texts, and payloads with fields replaced by odd values, dropped or added."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from advocacy_common.events import EventData, InvalidEvent, decode, new_event
from advocacy_common.events.gamification import PointsAwarded
from advocacy_common.events.sharing import ShareClicked, Verdict

CLICK = ShareClicked(
    click_id="k1",
    share_id="s1",
    code="abcdefghij",
    content_id="c1",
    employee_id="alice",
    network="linkedin",
    clicked_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    verdict=Verdict.counted,
    team="sales",
)
AWARD = PointsAwarded(
    employee_id="alice",
    entry_id="e1",
    points=5,
    action="click",
    cause_event_id="k1",
    rule_version=1,
    occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)
SAMPLES: list[EventData] = [CLICK, AWARD]

TEXTS = [
    "2026-01-02T03:04:05Z",
    "2026-01-02T03:04:05.123456Z",
    "2026-01-02T03:04:05.1234567Z",  # nanoseconds: msgspec rounds, pydantic truncates
    "2026-01-02T03:04:05.9999999Z",
    "2026-01-02T03:04:05.5Z",
    "2026-01-02T03:04:05+01:00",
    "2026-01-02T03:04:05-00:00",
    "2026-01-02T03:04:05",
    "2026-01-02 03:04:05Z",
    "2026-01-02t03:04:05z",
    "2026-01-02",
    "20260102T030405Z",
    "20260102T030405.000Z",
    "2026-01-02T03:04Z",
    "2026-02-30T03:04:05Z",
    "2026-01-02T24:00:00Z",
    "2026-01-02T23:59:60Z",
    "0000-01-02T03:04:05Z",
    "2026-01-02T03:04:05,5Z",
    "2026-01-02T03:04:05.Z",
    "2026-01-02T03:04:05.12345aZ",
    "2026-01-02T03:04:05Z\n",
    "\uff12\uff10\uff12\uff16-01-02T03:04:05Z",  # full-width digits
    "1767323045",
    "",
    "yesterday",
]
_ODD = st.sampled_from(
    [None, True, False, 0, 1, -1, 1.0, 1.5, 2**63, 2**64, -(2**63) - 1, "", "x", "1", "true", "counted", "Counted"]
    + [v.value for v in Verdict]
    + TEXTS
    + [[], {}, ["x"], {"a": 1}, "\ud800", "é" * 3]
)


def payload_of(sample: EventData) -> st.SearchStrategy[dict[str, Any]]:
    """The sample's fields, some replaced by odd values, some dropped, an extra key now and then."""
    good = json.loads(sample.model_dump_json())
    names = sorted(good)
    return st.tuples(
        st.dictionaries(st.sampled_from(names), _ODD, max_size=3),
        st.sets(st.sampled_from(names), max_size=2),
        st.dictionaries(st.sampled_from(["extra", "x"]), _ODD, max_size=1),
    ).map(lambda t: {**{k: v for k, v in good.items() if k not in t[1]}, **t[0], **t[2]})


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8", "surrogatepass")


def decoded(sample: EventData, value: bytes, light: frozenset[str] = frozenset()) -> EventData | str:
    """``value`` decoded as a consumer decodes a record of ``sample``'s type (``light``: the consumer's
    light types): the data, or the dead-letter reason."""
    try:
        data: EventData = decode(new_event("/advocacy/test", "acme", sample).headers(), value, light).data
    except InvalidEvent as e:
        return str(e)
    return data
