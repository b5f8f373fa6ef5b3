"""Bad input gets a clear answer, never a 500: every date-time a request can carry -- a body field at
any depth or a query parameter, found in the OpenAPI documents, so a new one is covered -- is a 422
naming it when it lies outside the years 1900-9000 (``advocacy_common.instants.Instant``).

Found by ``make fuzz`` (``POST /v1/challenges`` with ``starts_at`` 0001-01-01T00:01:00+00:11): a
valid RFC 3339 time whose UTC instant Python's datetime cannot hold raised OverflowError wherever it
was turned into UTC (our code, a comparison, asyncpg binding it), a 500 on routes of three services.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import World
from tests.security.isolation_kit import build_request
from tests.security.openapi_kit import Operation, all_operations, document, minimal, properties, resolve
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

# year 1 at +01:00 and year 9999 at -01:00 cannot be turned into UTC; the other two can, barely
OUT_OF_RANGE = (
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1899-12-31T23:59:59Z",
    "9001-01-01T00:00:00Z",
)
Path = tuple[str | int, ...]


def _options(schema: dict[str, Any], doc: dict[str, Any]) -> list[dict[str, Any]]:
    schema = resolve(schema, doc)
    return [resolve(o, doc) for key in ("anyOf", "oneOf") for o in schema.get(key, [])] or [schema]


def _is_time(schema: dict[str, Any], doc: dict[str, Any]) -> bool:
    return any(o.get("format") == "date-time" for o in _options(schema, doc))


def _time_paths(schema: dict[str, Any], doc: dict[str, Any], at: Path = (), depth: int = 0) -> list[Path]:
    """Paths to every date-time in a body schema (an array's first item stands for all)."""
    if _is_time(schema, doc):
        return [at]
    if depth > 6:
        return []
    out: list[Path] = []
    for option in _options(schema, doc):
        if option.get("type") == "array":
            out += _time_paths(option.get("items", {}), doc, (*at, 0), depth + 1)
        for name, sub in option.get("properties", {}).items():
            out += _time_paths(sub, doc, (*at, name), depth + 1)
    return out


def _with(node: Any, schema: dict[str, Any], doc: dict[str, Any], at: Path, value: str) -> Any:
    """``node`` (a minimal valid body) with ``value`` at ``at``, building what lies between."""
    if not at:
        return value
    key, rest = at[0], at[1:]
    if isinstance(key, int):
        (items,) = [o["items"] for o in _options(schema, doc) if o.get("type") == "array"]
        array = list(node) if isinstance(node, list) and node else [minimal(items, doc)]
        array[0] = _with(array[0], items, doc, rest, value)
        return array
    sub = properties(schema, doc)[key]
    obj = dict(node) if isinstance(node, dict) else {}
    obj[key] = _with(obj.get(key, minimal(sub, doc, key)), sub, doc, rest, value)
    return obj


def _cases() -> list[Any]:
    out = []
    for op in all_operations():
        doc = document(op.svc)
        for p in op.params("query"):
            if _is_time(p.get("schema", {}), doc):
                out.append(pytest.param(op, "query", (p["name"],), id=f"{op.id} ?{p['name']}"))
        if op.body_schema is not None:
            for at in _time_paths(op.body_schema, doc):
                out.append(pytest.param(op, "body", at, id=f"{op.id} {'.'.join(map(str, at))}"))
    return out


CASES = _cases()


def test_the_documents_have_date_times_in_bodies_nested_bodies_and_queries() -> None:
    where = {(c.values[1], len(c.values[2]) > 1) for c in CASES}
    assert {("body", False), ("body", True), ("query", False)} <= where, where


@pytest.mark.parametrize(("op", "where", "at"), CASES)
async def test_a_date_time_out_of_range_is_a_422_naming_it(
    op: Operation, where: str, at: Path, sec_stack: PrivateStack, world: World
) -> None:
    doc = document(op.svc)
    path, query, headers, body = build_request(op, world.ids)
    token = sec_stack.token(world.tenant, world.admin, "admin", team=world.team)
    wrong = []
    async with sec_stack.client(op.svc, token) as c:
        for value in OUT_OF_RANGE:
            if where == "query":
                r = await c.request(op.method.upper(), path, params={**query, str(at[0]): value}, headers=headers)
            else:
                sent = _with(body, op.body_schema or {}, doc, at, value)
                r = await c.request(op.method.upper(), path, params=query, headers=headers, json=sent)
            named = any(str(at[-1]) in d.get("field", "") for d in r.json().get("error", {}).get("details", []))
            if r.status_code != 422 or not named:
                wrong.append((value, r.status_code, r.text[:200]))
    assert not wrong, (op.id, at, wrong)
