"""The partner contract (AsyncAPI) and the REST contracts (OpenAPI) are regenerated and must equal the
committed files; the AsyncAPI document names every topic and resolves every reference."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from advocacy_common import topics
from advocacy_common.events import REGISTRY, new_event
from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict
from advocacy_common.partner_feed import partner_payload
from advocacy_dev import asyncapi, openapi_export
from tests.deploy.conftest import ROOT, SERVICES, build, public_routes
from tests.deploy.test_k8s import ROUTES


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / asyncapi.DOC_PATH).read_text()))


def test_asyncapi_is_regenerated_identically() -> None:
    committed = (ROOT / asyncapi.DOC_PATH).read_text()
    assert asyncapi.render() == committed, (
        f"docs/asyncapi.yaml is out of date with the event models. Regenerate it with `{asyncapi.REGENERATE}` "
        "and commit it (a change to a published type must stay additive; see docs/partners.md)."
    )


def test_every_topic_and_type_is_in_the_asyncapi_document(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    for topic in topics.ALL_TOPICS:
        assert topic in addresses, topic
    assert topics.PARTNER_FEED_PREFIX + "{tenant}" in addresses  # {tenant}: the encoded id (tenant_segment)
    messages = doc["components"]["messages"]
    for event_type, model in REGISTRY.items():
        assert messages[event_type]["name"] == event_type
        channel = doc["channels"][model.TOPIC]
        assert event_type in channel["messages"]
    partner = doc["channels"][asyncapi.PARTNER_CHANNEL]["messages"]
    assert set(partner) == {t for t, m in REGISTRY.items() if m.PARTNER_VISIBLE}


def test_messages_carry_cloudevents_headers_and_a_kafka_key(doc: dict[str, Any]) -> None:
    headers = doc["components"]["schemas"]["CloudEventsHeaders"]
    assert set(headers["required"]) == {
        "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_tenantid", "content-type",
    }  # fmt: skip
    assert "ce_subject" in headers["properties"]
    for message in doc["components"]["messages"].values():
        assert message["headers"]["allOf"][0] == {"$ref": "#/components/schemas/CloudEventsHeaders"}
        assert message["headers"]["allOf"][1]["properties"]["ce_type"]["const"] == message["name"]
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert message["bindings"]["kafka"]["key"]["description"].startswith("`tenant")


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    def resolve(ref: str) -> Any:
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"unresolved {ref}"
            node = node[part]
        return node

    def walk(node: Any) -> int:
        if isinstance(node, dict):
            found = 0
            if isinstance(node.get("$ref"), str):
                resolve(node["$ref"])
                found = 1
            return found + sum(walk(v) for v in node.values())
        if isinstance(node, list):
            return sum(walk(v) for v in node)
        return 0

    assert walk(doc) > 100
    for op in doc["operations"].values():
        channel = resolve(op["channel"]["$ref"])
        assert op["action"] in ("send", "receive")
        for m in op["messages"]:
            assert m["$ref"].startswith(op["channel"]["$ref"] + "/messages/")
            assert resolve(m["$ref"]) in channel["messages"].values()


def test_partner_payload_schemas_match_what_the_forwarder_sends(doc: dict[str, Any]) -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    samples = [
        ShareClicked(
            click_id="k1", share_id="s1", code="abcdefghij", content_id="c1", employee_id="e1", network="x",
            clicked_at=now, verdict=Verdict.counted, team="sales", device="mobile", country="DE",
        ),
        ShareCreated(share_id="s", employee_id="e", content_id="c", network="x", code="k", created_at=now,
                     employee_name="Eve", team="t", audience_size=5),
    ]  # fmt: skip
    schemas = doc["components"]["schemas"]
    for data in samples:
        payload = partner_payload(new_event("/advocacy/sharing", "acme", data))
        assert payload is not None
        schema = schemas[f"{data.TYPE}.partner"]
        assert set(payload) <= set(schema["properties"]), data.TYPE
        assert set(schema["required"]) <= set(payload)
        assert "employee_name" not in schema["properties"]


def test_openapi_documents_are_regenerated_identically() -> None:
    for service in SERVICES:
        path = ROOT / openapi_export.path_for(service)
        assert path.exists(), f"{path} missing; generate it with `{openapi_export.REGENERATE}`"
        assert openapi_export.render(service) == path.read_text(), (
            f"docs/openapi/{service}.json is out of date with the {service} app's routes. "
            f"Regenerate with `{openapi_export.REGENERATE}` and commit docs/openapi/."
        )


def test_every_documented_path_is_routed_by_the_edge_to_its_service() -> None:
    """A new public prefix needs an HTTPRoute path (deploy/k8s/base/<service>/route.yaml) and an
    Ingress path (deploy/k8s/components/ingress-nginx/<service>.yaml)."""
    ingress = {p: s for p, s in ROUTES.items()}
    for service in SERVICES:
        paths = json.loads((ROOT / openapi_export.path_for(service)).read_text())["paths"]
        for path in paths:
            owners = {s for prefix, s in ingress.items() if path == prefix or path.startswith(prefix.rstrip("/") + "/")}
            assert owners == {service}, f"{service} serves {path}; the edge routes it to {owners or 'nothing'}"
    wanted = {p.rstrip("/") for p in ingress}
    for overlay in ("prod", "prod-ingress-nginx"):  # the console's pages: tests/deploy/test_console_deploy.py
        prefixes = {p for p, s in public_routes(build(overlay)).items() if s != "console" and not p.startswith("=")}
        assert prefixes == wanted, overlay


def test_partners_guide_names_every_partner_visible_type() -> None:
    text = (ROOT / "docs/partners.md").read_text()
    for event_type, model in REGISTRY.items():
        if model.PARTNER_VISIBLE:
            assert f"`{event_type}`" in text, f"docs/partners.md does not list {event_type}"
    for needed in ("ce_source", "ce_id", "at least once", "consumer group", "examples/partner_consumer.py"):
        assert needed.lower() in text.lower()
