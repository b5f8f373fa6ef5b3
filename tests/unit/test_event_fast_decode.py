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

from advocacy_common.events import REGISTRY, EventData, assembler, new_event, new_event_id
from advocacy_common.events.base import _fast_decoder
from advocacy_common.events.gamification import PointsAwarded, PointsAwardedV2, PointsOfAction
from advocacy_common.events.sharing import ClickReceived, ShareClicked, ShareCreated
from tests.support.payloads import CLICK, SAMPLES, TEXTS, decoded, encode, payload_of


def _outcome(sample: EventData, value: bytes) -> object:
    data = decoded(sample, value)
    if isinstance(data, str):
        return ("invalid", data)
    return (type(data), data.model_dump(), data.model_dump_json(), data.model_fields_set)


def _pydantic_outcome(sample: EventData, value: bytes) -> object:
    model = type(sample)
    try:
        data = model.model_validate_json(value)
    except ValidationError as e:
        return ("invalid", f"{model.TYPE}: {e.error_count()} invalid field(s): {e.errors()[0]['msg']}")
    return (type(data), data.model_dump(), data.model_dump_json(), data.model_fields_set)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(SAMPLES).flatmap(lambda s: st.tuples(st.just(s), payload_of(s))))
def test_the_fast_path_agrees_with_pydantic_on_any_payload(case: tuple[EventData, dict[str, Any]]) -> None:
    """Same data (values, serialisation, fields set) or the same dead-letter reason."""
    sample, payload = case
    value = encode(payload)
    assert _outcome(sample, value) == _pydantic_outcome(sample, value)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("field", ["clicked_at", "team"])
def test_every_odd_text_in_a_field_agrees_with_pydantic(text: str, field: str) -> None:
    value = encode({**json.loads(CLICK.model_dump_json()), field: text})
    assert _outcome(CLICK, value) == _pydantic_outcome(CLICK, value)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
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
