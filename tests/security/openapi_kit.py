"""What the security tests read from each service's OpenAPI document: its operations, and a
minimal valid instance of a JSON schema (so a request body passes validation and the handler's
own checks, e.g. tenancy, are what answers)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SERVICES = ("content", "sharing", "metrics", "gamification", "notifications")
#: Security schemes of routes a tenant's secret authenticates instead of a token (content's SCIM
#: service provider, ADR 0013). The token suites skip them; the role matrix lists them in its
#: ``SCIM_SECRET`` class (every token is a 401), and tests/integration/test_scim_directory.py tests the
#: secret itself (right, wrong, rotated, another tenant's).
SECRET_SCHEMES = frozenset({"scimSecret"})
METHODS = ("get", "post", "put", "patch", "delete")


@functools.cache
def document(svc: str) -> dict[str, Any]:
    """The service's OpenAPI document as its code builds it (what the running process serves)."""
    from advocacy_dev import openapi_export

    return openapi_export.openapi(svc)


@dataclass(frozen=True)
class Operation:
    svc: str
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.svc}:{self.method.upper()} {self.path}"

    def params(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p.get("in") == where]

    @property
    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return media.get("schema") if media else None

    @property
    def body_required(self) -> bool:
        return bool(self.spec.get("requestBody", {}).get("required"))

    @property
    def secret(self) -> bool:
        """Authenticated by a tenant secret (SECRET_SCHEMES), not a token."""
        return any(set(req) & SECRET_SCHEMES for req in self.spec.get("security", []))

    @property
    def streams(self) -> bool:
        """Server-Sent Events (opened with a stream ticket): tested on their own."""
        responses = self.spec.get("responses", {})
        sse = any("text/event-stream" in (r.get("content") or {}) for r in responses.values())
        return sse or any(p["name"] == "ticket" for p in self.params("query"))


def operations(svc: str, *, secret_routes: bool = False) -> list[Operation]:
    """The operations behind token authentication: a public one (``security: []``, sharing's
    /r/{code}, answered before the app's routing) has tests of its own (test_urls_and_redirects.py);
    one a tenant secret authenticates (SECRET_SCHEMES) is included only with ``secret_routes``."""
    out = []
    for path, item in document(svc)["paths"].items():
        for method in METHODS:
            if method in item and item[method].get("security") != []:
                op = Operation(svc, method, path, item[method])
                if secret_routes or not op.secret:
                    out.append(op)
    return out


def all_operations(*, secret_routes: bool = False) -> list[Operation]:
    return [op for svc in SERVICES for op in operations(svc, secret_routes=secret_routes)]


def resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
    return schema


def properties(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(schema, doc)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            option = resolve(option, doc)
            if option.get("type") == "object" or "properties" in option:
                return dict(option.get("properties", {}))
    return dict(schema.get("properties", {}))


def _time_for(name: str) -> str:
    now = datetime.now(UTC)
    later = any(w in name for w in ("end", "expire", "to", "until"))
    return (now + timedelta(days=2 if later else 1)).isoformat().replace("+00:00", "Z")


def minimal(schema: dict[str, Any], doc: dict[str, Any], name: str = "") -> Any:
    """A small instance that satisfies ``schema`` (required members only)."""
    schema = resolve(schema, doc)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None and not schema.get("required"):
        pass  # a default is valid, but building the value keeps types honest
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [resolve(o, doc) for o in schema[key]]
            non_null = [o for o in options if o.get("type") != "null"]
            return minimal((non_null or options)[0], doc, name)
    if "allOf" in schema:
        return minimal(schema["allOf"][0], doc, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: minimal(v, doc, k) for k, v in props.items() if k in schema.get("required", [])}
    if kind == "array":
        n = int(schema.get("minItems", 0))
        return [minimal(schema.get("items", {}), doc, name) for _ in range(n)]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time" or name.endswith("_at") or name in ("from", "to"):
            return _time_for(name)
        if fmt == "date":
            return _time_for(name)[:10]
        if fmt in ("uri", "url") or name.endswith("url"):
            return "https://example.com/sec"
        if name == "currency":
            return "EUR"
        if name == "amount":
            return "1.00"
        text = "sec-test"
        lo, hi = int(schema.get("minLength", 1)), int(schema.get("maxLength", 100))
        return (text * (lo // len(text) + 1))[: max(lo, min(len(text), hi))]
    if kind == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in schema else 1)
        return int(lo)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "sec-test"
