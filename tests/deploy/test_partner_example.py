"""docs/examples/partner_consumer.py parses real records and applies each event once."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import example as case
from hypothesis import given
from hypothesis import strategies as st

from advocacy_common import topics
from advocacy_common.events import new_event
from advocacy_common.events.sharing import ShareClicked, Verdict
from advocacy_common.partner_feed import partner_payload
from tests.deploy.conftest import ROOT


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("partner_consumer", ROOT / "docs/examples/partner_consumer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["partner_consumer"] = module
    spec.loader.exec_module(module)
    return module


def _record(click_id: str = "k1") -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    """A partner-feed record exactly as the forwarder produces it."""
    data = ShareClicked(
        click_id=click_id, share_id="s1", code="abcdefghij", content_id="c1", employee_id="e1", network="x",
        clicked_at=datetime(2026, 5, 1, tzinfo=UTC), verdict=Verdict.counted,
    )  # fmt: skip
    env = new_event("/advocacy/sharing", "acme", data)
    payload = partner_payload(env)
    return env.headers(), json.dumps(payload).encode(), env.key.encode()


def test_parse_reads_the_cloudevents_headers(example: ModuleType) -> None:
    headers, value, key = _record()
    event = example.parse(headers, value, key)
    assert event.type == "io.advocacy.share.clicked.v1"
    assert event.source == "/advocacy/sharing" and event.tenant == "acme"
    assert event.key == "acme:e1" and event.subject == "k1"
    assert event.data["click_id"] == "k1" and event.time.tzinfo is not None
    assert event.dedupe_key == (event.source, event.id)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_id"], v), "missing header"),
        (lambda h, v: ([(k, b"0.3" if k == "ce_specversion" else x) for k, x in h], v), "unsupported"),
        (lambda h, v: (h, b"not json"), "not JSON"),
        (lambda h, v: (h, b"[1]"), "not a JSON object"),
        (lambda h, v: ([(k, b"\xff" if k == "ce_type" else x) for k, x in h], v), "UTF-8"),
    ],
)
def test_parse_refuses_what_is_not_an_event(example: ModuleType, mutate: object, message: str) -> None:
    headers, value, _ = _record()
    h, v = mutate(headers, value)  # type: ignore[operator]
    with pytest.raises(example.BadRecord, match=message):
        example.parse(h, v)


def test_a_redelivered_event_is_applied_once(example: ModuleType, tmp_path: Path) -> None:
    store = example.Store(str(tmp_path / "p.db"))
    first = example.parse(*_record("k1"))
    second = example.parse(*_record("k2"))
    assert store.apply_batch([first, second]) == 2
    assert store.apply_batch([first]) == 0  # at-least-once: the same (source, id) again
    assert store.clicks("s1") == 2
    unknown = example.PartnerEvent(**{**first.__dict__, "id": "x", "type": "io.advocacy.share.clicked.v2"})
    assert store.apply_batch([unknown]) == 1  # a newer type is skipped, not an error
    assert store.clicks("s1") == 2


@given(st.text(st.characters(codec=None, categories=None), min_size=1, max_size=60))
@case("acme")
@case("Acme Corp/EU")
@case("\ud800")
def test_the_example_names_the_tenant_as_the_library_does(example: ModuleType, tenant: str) -> None:
    """The example stands alone, so it carries its own copy of the encoding: the same names."""
    try:
        expected = topics.tenant_segment(tenant)
    except ValueError:
        return  # too long for a topic name: the library refuses it, no feed exists
    assert example.tenant_segment(tenant) == expected


def test_consumer_config_is_manual_commit_from_earliest(example: ModuleType) -> None:
    plain = example.consumer_config({"ADVOCACY_TENANT": "acme"})
    assert plain["group_id"] == "partner.acme.example" == topics.partner_group("acme", "example")
    other = example.consumer_config({"ADVOCACY_TENANT": "Acme.EU"})
    assert other["group_id"] == topics.partner_group("Acme.EU", "example") == "partner._41cme_2e_45_55.example"
    assert plain["enable_auto_commit"] is False and plain["auto_offset_reset"] == "earliest"
    secure = example.consumer_config(
        {"ADVOCACY_TENANT": "acme", "KAFKA_USERNAME": "partner-acme", "KAFKA_PASSWORD": "pw"}
    )
    assert secure["security_protocol"] == "SASL_SSL" and secure["sasl_mechanism"] == "SCRAM-SHA-512"
