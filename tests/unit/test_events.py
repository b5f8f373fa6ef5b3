import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from advocacy_common.events import REGISTRY, InvalidEvent, decode, new_event
from advocacy_common.events.base import Envelope, _parse_time
from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict


def _share() -> ShareCreated:
    return ShareCreated(
        share_id="s1",
        employee_id="alice",
        content_id="c1",
        network="linkedin",
        code="abcdefghij",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        employee_name="Alice",
        team="sales",
    )


def test_round_trip_through_kafka_binary_mode() -> None:
    env = new_event("/advocacy/sharing", "acme", _share())
    back = decode(env.headers(), env.value())
    assert back == env
    headers = dict(env.headers())
    assert headers["ce_type"] == b"io.advocacy.share.created.v1"
    assert headers["ce_tenantid"] == b"acme"
    assert headers["content-type"] == b"application/json"
    assert env.key == "acme:alice"
    assert not any(k.startswith("ce_") or k in ("id", "type", "source") for k in orjson.loads(env.value()))


@pytest.mark.parametrize("missing", ["ce_id", "ce_source", "ce_type", "ce_tenantid"])
def test_missing_required_header_is_invalid(missing: str) -> None:
    env = new_event("/advocacy/sharing", "acme", _share())
    headers = [(k, v) for k, v in env.headers() if k != missing]
    with pytest.raises(InvalidEvent, match=missing):
        decode(headers, env.value())


def test_unknown_type_and_bad_json_are_invalid() -> None:
    env = new_event("/advocacy/sharing", "acme", _share())
    headers = [(k, b"io.advocacy.nope.v1" if k == "ce_type" else v) for k, v in env.headers()]
    with pytest.raises(InvalidEvent, match="unknown event type"):
        decode(headers, env.value())
    with pytest.raises(InvalidEvent):
        decode(env.headers(), b"{not json")
    with pytest.raises(InvalidEvent):
        decode(env.headers(), b'{"share_id": "only"}')


def test_unknown_fields_are_ignored_for_additive_evolution() -> None:
    env = new_event("/advocacy/sharing", "acme", _share())
    value = env.value()[:-1] + b',"added_later":42}'
    assert decode(env.headers(), value).data == env.data


def test_registry_types_are_versioned_past_tense_facts() -> None:
    assert REGISTRY
    for t in REGISTRY:
        assert t.startswith("io.advocacy.") and t.rsplit(".", 1)[1].startswith("v"), t


def test_clicks_are_keyed_by_tenant_and_employee() -> None:
    clicked = ShareClicked(
        click_id="k",
        share_id="s",
        code="c",
        content_id="c1",
        employee_id="bob",
        network="x",
        clicked_at=datetime.now(UTC),
        verdict=Verdict.counted,
    )
    assert new_event("/advocacy/sharing", "t1", clicked).key == "t1:bob"


def _reference_decode(headers: list[tuple[str, bytes]], value: bytes | None) -> Envelope[Any]:
    """The first, plain version of :func:`decode`: the fast one must agree with it on every input."""
    raw = dict(headers)
    try:
        attrs = {
            a: v.decode()
            for a in ("id", "source", "type", "tenantid", "time", "subject")
            if (v := raw.get(f"ce_{a}")) is not None
        }
    except UnicodeDecodeError as e:
        raise InvalidEvent(f"header is not UTF-8: {e}") from e
    for required in ("id", "source", "type", "tenantid"):
        if not attrs.get(required):
            raise InvalidEvent(f"missing header ce_{required}")
    model = REGISTRY.get(attrs["type"])
    if model is None:
        raise InvalidEvent(f"unknown event type {attrs['type']!r}")
    if value is None:
        raise InvalidEvent("empty record value")
    try:
        data = model.model_validate_json(value)
    except ValidationError as e:
        raise InvalidEvent(f"{attrs['type']}: {e.error_count()} invalid field(s): {e.errors()[0]['msg']}") from e
    try:
        time = _parse_time(attrs["time"]) if attrs.get("time") else datetime.now(UTC)
    except ValueError as e:
        raise InvalidEvent(f"bad ce_time: {e}") from e
    return Envelope(attrs["source"], attrs["tenantid"], data, attrs["id"], time, attrs.get("subject"))


_SHARE = new_event("/advocacy/sharing", "acme", _share())
_HEADER_NAMES = [k for k, _ in _SHARE.headers()] + ["ce_extra"]
_HEADER_VALUES = st.sampled_from(
    [v for _, v in _SHARE.headers()]
    + [b"", b"\xff\xfe", b"io.advocacy.nope.v1", ShareClicked.TYPE.encode(), b"2026-01-02T03:04:05", b"yesterday"]
) | st.binary(max_size=6)
_VALUES = st.sampled_from([_SHARE.value(), None, b"", b"{not json", b'{"share_id": "only"}', b"[]"])


def _outcome(decoder: Callable[..., Envelope[Any]], headers: list[tuple[str, bytes]], value: bytes | None) -> object:
    try:
        env = decoder(headers, value)
    except InvalidEvent as e:
        return ("invalid", str(e))
    # Without ce_time the envelope is stamped with the time of decoding: compare the rest.
    has_time = bool(dict(headers).get("ce_time"))
    return (
        env.source,
        env.tenant_id,
        env.data,
        env.id,
        env.time if has_time else None,
        env.subject,
        has_time and hash(env),
    )


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), _HEADER_VALUES), max_size=12).map(
        lambda extra: [*_SHARE.headers(), *extra]
    )
    | st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), _HEADER_VALUES), max_size=12),
    _VALUES,
)
def test_decode_agrees_with_the_reference_on_any_record(headers: list[tuple[str, bytes]], value: bytes | None) -> None:
    """Same envelope or same dead-letter reason, for well-formed, damaged and hostile records."""
    assert _outcome(decode, headers, value) == _outcome(_reference_decode, headers, value)


def test_decoded_envelope_is_an_ordinary_frozen_envelope() -> None:
    back = decode(_SHARE.headers(), _SHARE.value())
    assert type(back) is Envelope and back == _SHARE and hash(back) == hash(_SHARE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.id = "other"  # type: ignore[misc]


def test_decoded_events_share_one_set_of_field_names_and_stay_independent() -> None:
    """Memory: a decoded event with every field holds no set of its own (728 bytes for a click)."""
    first, second = (decode(_SHARE.headers(), _SHARE.value()).data for _ in range(2))
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.model_fields_set == set(ShareCreated.model_fields)
    changed = first.model_copy(update={"team": "marketing"})
    assert changed.team == "marketing" and second.team == "sales"
    assert second.model_fields_set == set(ShareCreated.model_fields)
    with pytest.raises(ValidationError):
        first.team = "ops"
    # an event missing optional fields (an older producer) keeps its own, exact set
    partial = orjson.loads(_SHARE.value())
    del partial["team"]
    older = decode(_SHARE.headers(), orjson.dumps(partial)).data
    assert "team" not in older.model_fields_set and older.team is None


def test_decoded_envelopes_share_their_source_and_tenant_strings() -> None:
    first, second = (decode(_SHARE.headers(), _SHARE.value()) for _ in range(2))
    assert first.tenant_id is second.tenant_id and first.source is second.source
