"""The payload's fast path (msgspec) gives what pydantic gives, or steps aside (issue 19)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from advocacy_common.events import REGISTRY, EventData, InvalidEvent, assembler, decode, new_event, new_event_id
from advocacy_common.events.base import _fast_decoder
from advocacy_common.events.gamification import PointsAwarded, PointsAwardedV2, PointsOfAction
from advocacy_common.events.sharing import ClickReceived, ShareClicked, ShareCreated, Verdict

_CLICK = ShareClicked(
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
_AWARD = PointsAwarded(
    employee_id="alice",
    entry_id="e1",
    points=5,
    action="click",
    cause_event_id="k1",
    rule_version=1,
    occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
)
_SAMPLES: list[EventData] = [_CLICK, _AWARD]

_TEXTS = [
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
    + _TEXTS
    + [[], {}, ["x"], {"a": 1}, "\ud800", "é" * 3]
)


def _payload(sample: EventData) -> st.SearchStrategy[dict[str, Any]]:
    """The sample's fields, some replaced by odd values, some dropped, an extra key now and then."""
    good = json.loads(sample.model_dump_json())
    names = sorted(good)
    return st.tuples(
        st.dictionaries(st.sampled_from(names), _ODD, max_size=3),
        st.sets(st.sampled_from(names), max_size=2),
        st.dictionaries(st.sampled_from(["extra", "x"]), _ODD, max_size=1),
    ).map(lambda t: {**{k: v for k, v in good.items() if k not in t[1]}, **t[0], **t[2]})


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8", "surrogatepass")


def _outcome(sample: EventData, value: bytes) -> object:
    env = new_event("/advocacy/test", "acme", sample)
    try:
        data = decode(env.headers(), value).data
    except InvalidEvent as e:
        return ("invalid", str(e))
    return (type(data), data.model_dump(), data.model_dump_json(), data.model_fields_set)


def _pydantic_outcome(sample: EventData, value: bytes) -> object:
    model = type(sample)
    try:
        data = model.model_validate_json(value)
    except ValidationError as e:
        return ("invalid", f"{model.TYPE}: {e.error_count()} invalid field(s): {e.errors()[0]['msg']}")
    return (type(data), data.model_dump(), data.model_dump_json(), data.model_fields_set)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(_SAMPLES).flatmap(lambda s: st.tuples(st.just(s), _payload(s))))
def test_the_fast_path_agrees_with_pydantic_on_any_payload(case: tuple[EventData, dict[str, Any]]) -> None:
    """Same data (values, serialisation, fields set) or the same dead-letter reason."""
    sample, payload = case
    value = _encode(payload)
    assert _outcome(sample, value) == _pydantic_outcome(sample, value)


@pytest.mark.parametrize("text", _TEXTS)
@pytest.mark.parametrize("field", ["clicked_at", "team"])
def test_every_odd_text_in_a_field_agrees_with_pydantic(text: str, field: str) -> None:
    value = _encode({**json.loads(_CLICK.model_dump_json()), field: text})
    assert _outcome(_CLICK, value) == _pydantic_outcome(_CLICK, value)


@pytest.mark.parametrize("sample", _SAMPLES, ids=lambda s: type(s).__name__)
def test_what_our_producers_write_takes_the_fast_path(sample: EventData) -> None:
    fast = _fast_decoder(type(sample))
    assert fast is not None
    data = fast(new_event("/advocacy/test", "acme", sample).value())
    assert data == sample and type(data) is type(sample)
    assert data.model_fields_set == set(type(sample).model_fields)
    with pytest.raises(ValidationError):
        setattr(data, "employee_id", "bob")  # noqa: B010 - still frozen


def test_the_hot_types_are_plain_and_the_others_keep_pydantic() -> None:
    plain = {t for t, model in REGISTRY.items() if _fast_decoder(model) is not None}
    assert {ShareClicked.TYPE, ShareCreated.TYPE, ClickReceived.TYPE, PointsAwarded.TYPE} <= plain
    # Money, lists, nested models, constrained fields: pydantic decodes them
    assert "io.advocacy.conversion.recorded.v1" not in plain
    assert "io.advocacy.content.published.v1" not in plain


def test_an_assembled_model_is_the_validated_one() -> None:
    """``assembler``: a model built from typed values without validation equals pydantic's, hashes
    and serialises the same, stays frozen; a missing value is refused."""
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    line = PointsOfAction(action="click", kind="award", entries=3, points=2, capped=1)
    validated = PointsAwardedV2(
        employee_id="alice",
        points=2,
        entry_count=3,
        first_entry_id="7",
        last_entry_id="9",
        first_occurred_at=at,
        last_occurred_at=at,
        by_action=[line],
    )
    made = assembler(PointsAwardedV2)(
        "alice", 2, 3, "7", "9", at, at, [assembler(PointsOfAction)("click", "award", 3, 2, 1)]
    )
    assert made == validated
    serialise = PointsAwardedV2.__pydantic_serializer__.to_json
    assert serialise(made) == serialise(validated)
    assert made.model_fields_set == validated.model_fields_set
    assert new_event("/s", "t", made, id="x", at=at).value() == new_event("/s", "t", validated, id="x", at=at).value()
    with pytest.raises(ValidationError):
        made.points = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        assembler(PointsOfAction)("click", "award", 3, 2)


def test_event_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(3000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        u = uuid.UUID(text)
        assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, text)
