"""Light data (``ConsumerSpec.light_types``): a plain type's payload as its msgspec twin takes exactly what
the fast path takes, with the model's values; anything else goes down the model's path unchanged."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advocacy_common.consumer import _decode, _Parsed
from advocacy_common.events import REGISTRY, EventData, decode, new_event
from advocacy_common.events.base import _fast_decoder, _plain, light_decoder, twin
from advocacy_common.events.content import ContentPublished
from advocacy_common.events.gamification import PointsAwarded
from advocacy_common.events.sharing import ShareClicked, Verdict
from tests.support.payloads import CLICK, SAMPLES, TEXTS, decoded, encode, payload_of

_CLICK = CLICK.model_copy(update={"team": None, "device": "mobile"})  # a device, no team


def _light(sample: EventData, value: bytes) -> object:
    """Decoded as a light consumer does: (the model, its values) or the dead-letter reason."""
    data = decoded(sample, value, frozenset({sample.TYPE}))
    return data if isinstance(data, str) else (getattr(type(data), "MODEL", type(data)), data.model_dump())


def _model(sample: EventData, value: bytes) -> object:
    data = decoded(sample, value)
    return data if isinstance(data, str) else (type(data), data.model_dump())


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SAMPLES).flatmap(lambda s: st.tuples(st.just(s), payload_of(s))))
def test_light_data_takes_what_the_fast_path_takes_with_the_models_values(
    case: tuple[EventData, dict[str, Any]],
) -> None:
    """Same values or the same dead-letter reason as without light data; a twin exactly where the fast
    path gives a model (the twin's fields, types and datetime checks are the model's)."""
    sample, payload = case
    value = encode(payload)
    assert _light(sample, value) == _model(sample, value)
    fast = _fast_decoder(type(sample))
    assert fast is not None
    assert (light_decoder(type(sample))(value) is None) == (fast(value) is None)


@pytest.mark.parametrize("text", TEXTS)
def test_every_odd_time_is_refused_by_both_or_read_alike(text: str) -> None:
    value = encode({**json.loads(_CLICK.model_dump_json()), "clicked_at": text})
    assert _light(_CLICK, value) == _model(_CLICK, value)
    fast = _fast_decoder(ShareClicked)
    assert fast is not None
    assert (light_decoder(ShareClicked)(value) is None) == (fast(value) is None)


def test_a_twin_reads_as_its_model() -> None:
    data = decode(
        new_event("/s", "acme", _CLICK).headers(),
        new_event("/s", "acme", _CLICK).value(),
        frozenset({ShareClicked.TYPE}),
    ).data
    assert type(data) is twin(ShareClicked) and type(data).MODEL is ShareClicked
    assert data.model_dump() == _CLICK.model_dump()
    assert list(data.model_dump()) == list(ShareClicked.model_fields)
    assert (data.TYPE, data.TOPIC, data.partition_key("acme"), data.subject()) == (
        _CLICK.TYPE,
        _CLICK.TOPIC,
        _CLICK.partition_key("acme"),
        _CLICK.subject(),
    )
    assert data.clicked_at == _CLICK.clicked_at and data.verdict is Verdict.counted
    assert hash(data) == hash(
        decode(
            new_event("/s", "acme", _CLICK).headers(), _CLICK.model_dump_json().encode(), frozenset({ShareClicked.TYPE})
        ).data
    )
    with pytest.raises(AttributeError):
        data.team = "x"  # frozen, like the model


@pytest.mark.parametrize("model", [ShareClicked, PointsAwarded])
def test_a_twins_fields_are_its_models(model: type[EventData]) -> None:
    """Names, order and types (a datetime as its checked text) are the model's: a planted difference
    in the twin (a field dropped, retyped or made optional) fails here as well as in the payloads."""
    fields = msgspec.structs.fields(twin(model))
    assert [f.name for f in fields] == list(model.model_fields)
    assert [f.type for f in fields] == [_plain(f.annotation) for f in model.model_fields.values()]
    assert all(f.required for f in fields)  # as the fast path: a missing field goes to pydantic's defaults
    assert not any(f.type is typing.Any for f in fields)


def test_a_type_that_is_not_plain_has_no_twin() -> None:
    with pytest.raises(TypeError):
        twin(ContentPublished)


def test_the_runner_decodes_light_types_only() -> None:
    """Only the spec's light types become twins; a malformed light record is dead-lettered with the
    model's reason."""
    from aiokafka.structs import ConsumerRecord

    env = new_event("/advocacy/test", "t1", _CLICK)
    good = ConsumerRecord("t", 0, 0, 0, 0, b"k", env.value(), None, 1, 1, env.headers())
    bad_value = env.value().replace(b'"linkedin"', b"5")
    bad = ConsumerRecord("t", 0, 1, 0, 0, b"k", bad_value, None, 1, 1, env.headers())
    light = _decode([good, bad], light=frozenset({ShareClicked.TYPE}))
    plain = _decode([good, bad])
    assert isinstance(light[0], _Parsed) and isinstance(plain[0], _Parsed)
    assert type(light[0].envelope.data) is twin(ShareClicked)
    assert type(plain[0].envelope.data) is ShareClicked
    assert not isinstance(light[1], _Parsed) and not isinstance(plain[1], _Parsed)
    assert light[1][1] == plain[1][1] and "invalid field" in light[1][1]
    assert ShareClicked.TYPE in REGISTRY


async def _nothing(session: Any, events: Any) -> None:
    return None


@pytest.mark.parametrize("light", [ContentPublished.TYPE, "no.such.v1"])
def test_a_runner_refuses_a_light_type_without_a_twin(light: str) -> None:
    from advocacy_common.consumer import ConsumerRunner, ConsumerSpec

    spec = ConsumerSpec(group_id="g", topics=("t",), handler=_nothing, light_types=frozenset({light}))
    with pytest.raises((TypeError, ValueError)):
        ConsumerRunner(spec, service="s", bootstrap="unused:9092", sessionmaker=Any, producer=lambda: None)
