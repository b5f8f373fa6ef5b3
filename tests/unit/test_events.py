from datetime import UTC, datetime

import orjson
import pytest

from advocacy_common.events import REGISTRY, InvalidEvent, decode, new_event
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
