"""Issue 15, edges: the base's Gateway API routes (Envoy Gateway) and their limits, validated against
the pinned CRD schemas, and NetworkPolicies that let every API reach its identity provider."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from advocacy_common.entrypoint import uvicorn_config
from advocacy_common.settings import HTTP_KEEP_ALIVE_SECONDS
from advocacy_content.settings import ContentSettings
from tests.deploy.conftest import OVERLAYS, build, of_kind, one

SCHEMAS = Path(__file__).parent / "schemas" / "gateway-crds.json"
GATEWAY_OVERLAYS = [o for o in OVERLAYS if o != "prod-ingress-nginx"]
GATEWAY_GROUPS = ("gateway.networking.k8s.io/", "gateway.envoyproxy.io/")


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- structural validation against a CRD's openAPIV3Schema --------------------------------------------
# kubernetes-validate has no Gateway API or Envoy Gateway schemas. These are the CRDs' own schemas
# (tests/deploy/schemas/extract.py: Gateway API v1.6.1 standard channel, Envoy Gateway v1.9.0), checked
# here for types, enums, patterns, sizes, required and unknown fields (the API server prunes unknown
# fields silently; kubernetes-validate's strict mode refuses them, so do we). The CEL rules
# (x-kubernetes-validations) are not evaluated.
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def violations(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    out: list[str] = []
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: int or string expected"]
        if isinstance(value, str):
            out += [
                f"{path}: {value!r} !~ {s['pattern']}"
                for s in schema.get("allOf", [])
                if not re.search(s["pattern"], value)
            ]
        return out
    if "anyOf" in schema and not any(not violations(value, s, path) for s in schema["anyOf"]):
        return [f"{path}: matches none of anyOf"]
    for sub in schema.get("allOf", []):
        out += violations(value, sub, path)
    kind = schema.get("type")
    if kind is not None and (
        not isinstance(value, _TYPES[kind]) or (kind in ("integer", "number") and isinstance(value, bool))
    ):
        return [f"{path}: {type(value).__name__}, {kind} expected"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} !~ {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            out.append(f"{path}: length {len(value)}")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and (value < schema.get("minimum", value) or value > schema.get("maximum", value)):
        out.append(f"{path}: {value} out of range")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)) or len(value) < schema.get("minItems", 0):
            out.append(f"{path}: {len(value)} items")
        for i, item in enumerate(value):
            out += violations(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{path}.{r}: required" for r in schema.get("required", []) if r not in value]
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                out += violations(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += violations(item, extra, f"{path}.{key}")
            elif not (extra or schema.get("x-kubernetes-preserve-unknown-fields") or not props):
                out.append(f"{path}.{key}: unknown field")
    return out


def crd_schemas() -> dict[str, Any]:
    return dict(json.loads(SCHEMAS.read_text())["schemas"])


def validate(obj: dict[str, Any]) -> list[str]:
    schema = crd_schemas().get(f"{obj['apiVersion']}/{obj['kind']}")
    if schema is None:
        return [f"no pinned schema for {obj['apiVersion']} {obj['kind']}"]
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    return violations(body, schema)


def test_every_gateway_api_object_matches_its_crd_schema(overlay: str) -> None:
    objects = [o for o in build(overlay) if o["apiVersion"].startswith(GATEWAY_GROUPS)]
    if overlay in GATEWAY_OVERLAYS:
        assert len(objects) >= 9
    for obj in objects:
        assert validate(obj) == [], f"{overlay}: {obj['kind']} {obj['metadata']['name']}"


def test_the_schema_check_refuses_what_the_api_server_would() -> None:
    """The check can fail: a typo'd field, a wrong enum, a bad duration, a missing required field."""
    objects = build("prod")
    route = copy.deepcopy(one(objects, "HTTPRoute", "gamification"))
    assert validate(route) == []
    route["spec"]["rules"][0]["timeout"] = {"request": "1h"}  # `timeouts`
    route["spec"]["rules"][1]["matches"][0]["path"]["type"] = "Prefix"  # Ingress's word
    assert _where(validate(route)) == {".spec.rules[0].timeout", ".spec.rules[1].matches[0].path.type"}
    policy = copy.deepcopy(one(objects, "BackendTrafficPolicy", "sharing-redirect"))
    policy["spec"]["rateLimit"]["global"]["rules"][0]["limit"]["unit"] = "Seconds"
    del policy["spec"]["rateLimit"]["global"]["rules"][0]["limit"]["requests"]
    policy["spec"]["requestBuffer"]["limit"] = "1 KiB"
    rule = ".spec.rateLimit.global.rules[0].limit"
    assert _where(validate(policy)) == {f"{rule}.unit", f"{rule}.requests", ".spec.requestBuffer.limit"}
    gateway = copy.deepcopy(one(objects, "Gateway", "advocacy"))
    gateway["spec"]["listeners"][0]["port"] = "443"
    assert _where(validate(gateway)) == {".spec.listeners[0].port"}


def _where(found: list[str]) -> set[str]:
    return {f.split(":")[0] for f in found}


# -- the Gateway, its routes and the edge limits -------------------------------------------------------
@pytest.mark.parametrize("overlay_name", GATEWAY_OVERLAYS)
def test_routes_attach_to_the_envoy_gateway_and_reach_existing_services(overlay_name: str) -> None:
    objects = build(overlay_name)
    (gateway,) = of_kind(objects, "Gateway")
    assert gateway["spec"]["gatewayClassName"] == "eg", "Envoy Gateway's GatewayClass (its Helm chart's default)"
    assert of_kind(objects, "Ingress") == []
    for route in of_kind(objects, "HTTPRoute"):
        assert route["spec"]["parentRefs"] == [{"name": gateway["metadata"]["name"]}]
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                svc = one(objects, "Service", ref["name"])
                assert ref["port"] in [p["port"] for p in svc["spec"]["ports"]]


def _policies_for(objects: list[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    return [
        p
        for p in of_kind(objects, "BackendTrafficPolicy")
        if {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route} in p["spec"]["targetRefs"]
    ]


def _bytes(quantity: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "k": 1000, "M": 1000**2}
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    assert m, quantity
    return int(m[1]) * units.get(m[2], 1)


@pytest.mark.parametrize("overlay_name", GATEWAY_OVERLAYS)
def test_the_redirect_has_its_body_and_per_client_rate_limits_at_the_edge(overlay_name: str) -> None:
    objects = build(overlay_name)
    redirect = one(objects, "HTTPRoute", "sharing-redirect")
    assert [m["path"] for r in redirect["spec"]["rules"] for m in r["matches"]] == [
        {"type": "PathPrefix", "value": "/r"}
    ]
    (policy,) = _policies_for(objects, "sharing-redirect")
    limits = policy["spec"]["rateLimit"]
    assert limits["type"] == "Global"  # Envoy Gateway counts per address only with Global limits
    (rule,) = limits["global"]["rules"]
    assert rule["clientSelectors"] == [{"sourceCIDR": {"type": "Distinct", "value": "0.0.0.0/0"}}]
    assert rule["limit"]["unit"] == "Minute" and 0 < rule["limit"]["requests"] <= 1200
    assert _bytes(policy["spec"]["requestBuffer"]["limit"]) <= 1024  # /r/ is a GET: no body
    (rest,) = _policies_for(objects, "sharing")
    assert _bytes(rest["spec"]["requestBuffer"]["limit"]) <= 64 * 1024
    (client,) = of_kind(objects, "ClientTrafficPolicy")
    assert client["spec"]["targetRefs"][0]["kind"] == "Gateway"


# -- keep-alive: the proxy closes an idle upstream connection before the service does ------------------
def _seconds(duration: str) -> float:
    """An Envoy Gateway duration ("60s", "1m30s", "500ms", "1h") in seconds."""
    parts = re.findall(r"(\d+)(ms|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def test_the_services_keep_idle_connections_for_the_shared_keep_alive() -> None:
    assert uvicorn_config("advocacy_content", ContentSettings.model_construct()).timeout_keep_alive == (
        HTTP_KEEP_ALIVE_SECONDS
    )


@pytest.mark.parametrize("overlay_name", GATEWAY_OVERLAYS)
def test_the_gateway_closes_idle_upstream_connections_before_the_services_do(overlay_name: str) -> None:
    # Envoy's own default is 1 h: a connection the service closed at its keep-alive would be reused
    # and the request answered 503. A policy on a route replaces the Gateway's for that route.
    objects = build(overlay_name)
    (gateway,) = of_kind(objects, "Gateway")
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["metadata"]["name"]}
    (on_gateway,) = [p for p in of_kind(objects, "BackendTrafficPolicy") if ref in p["spec"]["targetRefs"]]
    routes = of_kind(objects, "HTTPRoute")
    assert routes
    for route in routes:
        for policy in _policies_for(objects, route["metadata"]["name"]) or [on_gateway]:
            idle = policy["spec"].get("timeout", {}).get("http", {}).get("connectionIdleTimeout", "1h")
            # a margin for a request already on its way as the proxy's timer fires
            assert _seconds(idle) + 5 <= HTTP_KEEP_ALIVE_SECONDS, (route["metadata"]["name"], idle)


# -- every API can reach its identity provider ---------------------------------------------------------
def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def test_every_api_may_reach_its_jwks_url(overlay: str) -> None:
    """The dev overlay's JWKS URL is http://idp.<ns>.svc.cluster.local/ (port 80) while the base opened
    443 only: every authenticated request failed there. An in-cluster IdP must be reached through a
    pod selector (an ipBlock does not reliably match pod addresses); an outside one through an ipBlock."""
    objects = build(overlay)
    url = urlsplit(one(objects, "ConfigMap", "advocacy-config")["data"]["JWT_JWKS_URL"])
    port = url.port or {"http": 80, "https": 443}[url.scheme]
    in_cluster = (url.hostname or "").endswith(".svc.cluster.local")
    for d in of_kind(objects, "Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] != "api":
            continue
        reachable = False
        for policy in of_kind(objects, "NetworkPolicy"):
            if not _selects(policy, labels):
                continue
            for rule in policy["spec"].get("egress", []):
                if port not in [p["port"] for p in rule.get("ports", [])]:
                    continue
                peers = rule.get("to", [])
                if not peers or any(("podSelector" in p) if in_cluster else ("ipBlock" in p) for p in peers):
                    reachable = True
        assert reachable, f"{overlay}: {d['metadata']['name']} may not reach {url.geturl()} (port {port})"
