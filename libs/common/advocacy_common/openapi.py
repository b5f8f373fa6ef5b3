"""What every service's OpenAPI document says beyond FastAPI's defaults, so that the tools partners
and front-ends run on it (Swagger UI, openapi-typescript, client generators) get it right.

- **Operation ids** are camelCase verb + resource (``createContent``, ``listShares``): made from the
  route function's name by :func:`operation_id`; a route whose function name is not one passes
  ``operation_id=`` itself. ``tests/deploy/test_contract_tools.py`` checks the convention.
- **Security**: bearer JWT on every route that depends on :func:`auth.deps.get_principal` (the role
  gates do), so Swagger UI's *Authorize* button sends the token; a route that authenticates in its
  handler declares its own ``security`` with ``openapi_extra``.
- **Errors**: the body every 4xx/5xx really has, ``{"error": {code, message, details}}``
  (:mod:`advocacy_common.errors`), on every status a route can answer: 401 with a token, 403 with a
  role gate, 404 with a path parameter, 413 and 422 with a body or parameters, 500 always; other
  statuses (409, 429...) a route declares with ``responses=`` and gets the schema here.
- **A protocol's own errors**: a route whose errors have another standard's shape (SCIM's RFC 7644
  ``Error``, content's ``/scim/v2``) sets ``openapi_extra={"x-own-errors": True}`` and documents its
  error answers itself; nothing here adds to them.
- **Paths served before the app's routing** (sharing's ``/r/{code}``) come from the service
  definition's ``openapi_paths``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, Field

from advocacy_common.auth.deps import ROLE_GATES, get_principal

BEARER = "bearerAuth"

#: The HMAC headers a partner signs a conversion with instead of a token (docs/partners.md): all three together.
SIGNED_HEADERS = {
    "advocacyTenant": ("X-Advocacy-Tenant", "The tenant id the partner reports to."),
    "advocacyTimestamp": ("X-Advocacy-Timestamp", "Unix seconds when signed; a few minutes of skew are accepted."),
    "advocacySignature": (
        "X-Advocacy-Signature",
        "`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<raw body>` with the partner's conversion secret.",
    ),
}
#: ``openapi_extra`` of a route that takes a bearer token or the signed headers.
BEARER_OR_SIGNED: dict[str, Any] = {"security": [{BEARER: []}, {name: [] for name in SIGNED_HEADERS}]}
# Models of request bodies a route reads itself (to authenticate before judging the body): raw_body().
_RAW_BODIES: dict[str, type[BaseModel]] = {}

ERROR_TEXT = {
    400: "Bad request",
    401: "No valid bearer token (missing, malformed, expired or signed by an unknown key)",
    403: "The caller may not do this (role, partner scope or policy)",
    404: "Not found (another tenant's resource is not found either)",
    409: "Conflicts with the resource's state",
    410: "Gone",
    413: "Request body over the size limit",
    422: "Invalid input: `details` names each field",
    429: "Too many requests: retry after `Retry-After` seconds",
    500: "Internal error",
    503: "Busy or a dependency is unreachable: retry later",
}


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable, e.g. validation_error, not_found, rate_limited.")
    message: str = Field(description="For people: what was wrong.")
    details: list[dict[str, Any]] = Field(
        description="Per field problems, usually {field, message}; empty when there is nothing more to say."
    )


class ErrorResponse(BaseModel):
    """The body of every error answer (advocacy_common.errors)."""

    error: ErrorBody


_WORD = re.compile(r"[A-Za-z0-9]+")


def operation_id(route: APIRoute) -> str:
    """``create_content`` -> ``createContent``: the route function's name in camelCase."""
    words: list[str] = _WORD.findall(route.name)
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}


def _statuses(route: RouteContext, op: dict[str, Any]) -> set[int]:
    calls = set(_calls(route.dependant))
    found = {500}
    if get_principal in calls:
        found.add(401)
    if calls & ROLE_GATES:
        found.add(403)
    if "{" in (route.path_format or ""):
        found.add(404)
    if "requestBody" in op:
        found |= {413, 422}
    if op.get("parameters"):
        found.add(422)
    return found


def complete(schema: dict[str, Any], routes: list[Any], extra_paths: Mapping[str, Any]) -> dict[str, Any]:
    """Add the error schema, security and extra paths to FastAPI's document (in place)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    schemes = components.setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from the identity provider (`make token` mints one in dev mode).",
    }
    # FastAPI keeps included routers as such: a route context is the route as the app serves it
    # (its router's prefix and dependencies included).
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            op = schema["paths"][route.path_format][method.lower()]
            if op.pop("x-own-errors", False):
                op["responses"].pop("422", None)  # FastAPI's validation answer: the route answers its own
                continue
            statuses = _statuses(route, op)
            if 401 in statuses and "security" not in op:
                op["security"] = [{BEARER: []}]
            responses = op["responses"]
            for status in sorted(statuses | {int(s) for s in responses if s.isdigit() and int(s) >= 400}):
                answer = responses.setdefault(str(status), {})
                answer["description"] = ERROR_TEXT.get(status, answer.get("description", "Error"))
                answer["content"] = _error_content()
            op["responses"] = dict(sorted(responses.items()))
    if any(set(SIGNED_HEADERS) & set(req) for op in _operations(schema) for req in op.get("security", [])):
        for name, (header, text) in SIGNED_HEADERS.items():
            schemes[name] = {"type": "apiKey", "in": "header", "name": header, "description": text}
    for op in _operations(schema):
        ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        model = _RAW_BODIES.get(str(ref).rpartition("/")[2])
        if model is not None:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas[model.__name__] = body
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, never sent
        schemas.pop(name, None)
    schema["paths"].update(extra_paths)
    components["schemas"] = dict(sorted(schemas.items()))
    return schema


def install(app: FastAPI, extra_paths: Mapping[str, Any] | None = None) -> None:
    """Make ``app.openapi()`` (what /openapi.json and /docs serve) return the completed document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate(), app.routes, extra_paths or {})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # /docs: keep the token across reloads, so a person pastes it once and tries every route.
    app.swagger_ui_parameters = {**(app.swagger_ui_parameters or {}), "persistAuthorization": True}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the statuses a route's handler answers beyond those its dependencies imply
    (409 from a state check, 429 from a busy pool): :func:`complete` gives them the error schema."""
    return {status: {"description": ERROR_TEXT[status]} for status in statuses}


def raw_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting the JSON body of a route that reads ``request.body()`` itself."""
    _RAW_BODIES[model.__name__] = model
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _operations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in schema.get("paths", {}).values():
        for method, op in item.items():
            if method in ("get", "put", "post", "patch", "delete", "head", "options"):
                yield op
