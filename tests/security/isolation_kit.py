"""Calling an OpenAPI operation with chosen parameter values, and comparing two answers."""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from typing import Any

import httpx

from tests.security.openapi_kit import Operation, document, minimal, resolve

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")


def lookalike(value: str, rng: random.Random | None = None) -> str:
    """A value of the same shape (length, character classes, separators) that nobody owns."""
    rng = rng or random.Random()
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(rng.choice(string.digits))
        elif ch in "abcdef":
            out.append(rng.choice("abcdef"))
        elif ch.islower():
            out.append(rng.choice(string.ascii_lowercase))
        elif ch.isupper():
            out.append(rng.choice(string.ascii_uppercase))
        else:
            out.append(ch)
    fake = "".join(out)
    return fake if fake != value else lookalike(value, rng)


def is_enum(op: Operation, param: dict[str, Any]) -> bool:
    schema = resolve(param.get("schema", {}), document(op.svc))
    return "enum" in schema


def build_request(op: Operation, values: dict[str, str]) -> tuple[str, dict[str, Any], dict[str, str], Any]:
    """(path, query, headers, json body) for ``op`` with ``values`` by parameter name."""
    doc = document(op.svc)
    path = op.path
    for p in op.params("path"):
        name = p["name"]
        if is_enum(op, p):
            allowed = [str(v) for v in resolve(p["schema"], doc)["enum"]]
            value = values[name] if values.get(name) in allowed else allowed[0]  # the first unless one is named
        else:
            if name not in values:
                raise LookupError(
                    f"{op.id}: no tenant-A resource is known for path parameter {name!r}; "
                    "create one in tests/security/conftest.py build_world and add it to World.ids"
                )
            value = values[name]
        path = path.replace("{" + name + "}", value)
    query = {p["name"]: values[p["name"]] for p in op.params("query") if p["name"] in values}
    headers = {}
    for p in op.params("header"):
        if p["name"].lower() == "idempotency-key":
            headers[p["name"]] = f"sec-{uuid.uuid4().hex}"
    body = None
    if op.body_schema is not None:
        body = minimal(op.body_schema, doc)
    return path, query, headers, body


async def call(
    client: httpx.AsyncClient, op: Operation, values: dict[str, str], body_override: Any = None
) -> httpx.Response:
    """``op`` called with ``values``; its body the schema's minimal one, or ``body_override`` where
    the minimal body cannot pass validation (a URL, a value the path's enum decides)."""
    path, query, headers, body = build_request(op, values)
    if body_override is not None:
        body = body_override
    kwargs: dict[str, Any] = {"params": query, "headers": headers}
    if body is not None:
        kwargs["json"] = body
    return await client.request(op.method.upper(), path, **kwargs)


def normalized(response: httpx.Response, replace: dict[str, str]) -> tuple[int, Any]:
    """Status and body with the given values (ids) and every timestamp blanked out.

    An id is replaced only as a whole token (not inside a longer word or number) and only in the
    body's strings and keys, never in its numbers: a small id such as a delivery's ``1`` must not
    rewrite every digit 1 of the body (a count, a limit, a date) and make two equal answers differ."""
    try:
        body: Any = json.loads(response.text) if response.text else None
    except ValueError:
        return response.status_code, _replace_ids(response.text, replace)
    return response.status_code, _walk(body, replace)


def _replace_ids(text: str, replace: dict[str, str]) -> str:
    for value, placeholder in replace.items():
        if value:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", placeholder, text)
    return text


def _walk(node: Any, replace: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {_replace_ids(k, replace): _walk(v, replace) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, replace) for v in node]
    if isinstance(node, str):
        return "<time>" if _TIME.match(node) else _replace_ids(node, replace)
    return node
