"""The published contracts as the tools partners and front-ends run on them see them:

- the official AsyncAPI parser (``@asyncapi/parser`` 3.x) reports zero errors on docs/asyncapi.yaml;
- ``openapi-typescript`` 7 generates a client from each docs/openapi/*.json and ``tsc --strict`` compiles it;
- ``openapi-spec-validator`` accepts each OpenAPI document;
- and what those tools cannot see: stable verb+resource operation ids, security on every protected
  route, the real error body on every error answer, /r/{code} documented, /docs able to send a token.

The Node tools are pinned by tools/contracts/package-lock.json and installed by ``make contracts``
(``npm ci``, a prerequisite of ``make test``). Without them these tests skip, except under CI=true,
where they fail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from advocacy_common.errors import error_body
from advocacy_common.openapi import ErrorResponse
from advocacy_dev import asyncapi, openapi_export
from tests.deploy.conftest import ROOT, SERVICES

TOOLS = ROOT / "tools" / "contracts"
BIN = TOOLS / "node_modules" / ".bin"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}

#: operationId: camelCase, a verb first, then the resource (at least one more word).
VERBS = (
    *("approve", "archive", "cancel", "check", "close", "create", "delete", "erase", "export", "follow", "fulfil"),
    *("get", "invalidate", "list", "propose", "record", "redeem", "reject", "replace", "reply", "revoke", "rotate"),
    *("simulate", "stream", "update"),
)
OPERATION_ID = re.compile(rf"^(?:{'|'.join(VERBS)})(?:[A-Z][a-z0-9]*)+$")


def node_tool(name: str) -> Path:
    """A tool of tools/contracts/node_modules (``name`` under its .bin, or a package path)."""
    path = BIN / name if "/" not in name else TOOLS / "node_modules" / name
    if path.exists() and shutil.which("node"):
        return path
    message = f"{path} missing: run `make contracts` (npm ci in tools/contracts; needs node and npm)"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message} (CI=true: the contract tool tests may not be skipped)", pytrace=False)
    pytest.skip(message)


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@cache
def document(service: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / openapi_export.path_for(service)).read_text()))


def operations(service: str) -> list[tuple[str, str, dict[str, Any]]]:
    doc = document(service)
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def test_the_official_asyncapi_parser_reports_no_error() -> None:
    node_tool("@asyncapi/parser/package.json")  # the script is ours, the parser the package's
    result = run("node", TOOLS / "asyncapi-validate.mjs", ROOT / asyncapi.DOC_PATH)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [d for d in lines if d.get("severity") == "error"]
    assert result.returncode == 0 and not errors, (errors[:10], result.stderr[-2000:])
    assert lines[-1] == {"parsed": True, "errors": 0}


def test_the_asyncapi_servers_document_their_security() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / asyncapi.DOC_PATH).read_text())
    schemes = doc["components"]["securitySchemes"]
    for name, server in doc["servers"].items():
        assert server.get("security"), f"server {name} documents no security"
        for ref in server["security"]:
            assert ref["$ref"].removeprefix("#/components/securitySchemes/") in schemes
    kinds = {schemes[r["$ref"].rsplit("/", 1)[1]]["type"] for r in doc["servers"]["internal"]["security"]}
    assert kinds == {"scramSha512", "scramSha256", "plain", "X509"}
    assert "KAFKA_SECURITY_PROTOCOL" in doc["servers"]["internal"]["description"]


def test_openapi_typescript_clients_compile_under_tsc_strict(tmp_path: Path) -> None:
    generate, tsc = node_tool("openapi-typescript"), node_tool("tsc")
    imports = []
    for service in SERVICES:
        out = tmp_path / f"{service}.ts"
        result = run(generate, ROOT / openapi_export.path_for(service), "--output", out)
        assert result.returncode == 0, (service, result.stdout[-2000:], result.stderr[-2000:])
        assert "export interface paths" in out.read_text()
        imports.append(f'import type {{ paths as {service}, operations as {service}Ops }} from "./{service}";')
    # use what a client uses: the operations by id, and the error body of one of them
    (tmp_path / "client.ts").write_text(
        "\n".join(imports)
        + "\ntype Create = contentOps['createContent'];\n"
        + "export const status: Create['responses'][422]['content']['application/json']['error']['code'] = 'x';\n"
        + f"export type All = [{', '.join(SERVICES)}];\n"
    )
    files = sorted(str(p) for p in tmp_path.glob("*.ts"))
    result = run(tsc, "--strict", "--noEmit", "--target", "ES2022", "--module", "ES2022", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_spec_validator_accepts_the_document(service: str) -> None:
    validate(document(service))


def test_operation_ids_are_unique_verb_and_resource() -> None:
    every: set[str] = set()
    for service in SERVICES:
        seen: dict[str, str] = {}  # unique in a document (OpenAPI's rule; a client is made per document)
        for method, path, op in operations(service):
            where = f"{service}:{method.upper()} {path}"
            op_id = op.get("operationId", "")
            assert OPERATION_ID.match(op_id), f"{where}: operationId {op_id!r} is not verbResource ({VERBS})"
            assert op_id not in seen, f"{where} and {seen[op_id]} share the operationId {op_id}"
            seen[op_id] = where
        every |= set(seen)
    assert {"createContent", "listShares", "followLink", "recordConversion", "listGamificationAuditEntries"} <= every


def test_every_error_answer_has_the_real_error_body() -> None:
    for service in SERVICES:
        doc = document(service)
        assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        for method, path, op in operations(service):
            where = f"{service}:{method.upper()} {path}"
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            if op.get("security") == []:  # the redirect answers plain text
                continue
            if {"scimSecret": []} in op.get("security", []):  # SCIM (ADR 0013): RFC 7644's error, its secret
                assert op["security"] == [{"scimSecret": []}], where
                assert "401" in errors, where
                for answer in errors.values():
                    assert answer["content"]["application/scim+json"]["schema"]["required"] == ["schemas", "status"]
                continue
            assert "500" in errors, where
            for status, answer in errors.items():
                assert answer["content"]["application/json"]["schema"] == ERROR_REF, (where, status)
            if op.get("parameters") or "requestBody" in op:
                assert "422" in errors, where
            if "requestBody" in op:
                assert "413" in errors, where
            if "{" in path:
                assert "404" in errors, where
            if path.endswith("/stream"):  # opened with a stream ticket, not a bearer token
                continue
            assert {"bearerAuth": []} in op["security"], f"{where} documents no bearer token"
            assert {"401", "403"} <= set(errors), where


def test_the_error_schema_is_what_the_handlers_send() -> None:
    body = error_body("validation_error", "title: too long", [{"field": "title", "message": "too long"}])
    assert ErrorResponse.model_validate(body).model_dump() == body


def test_conversions_take_a_token_or_the_signed_headers() -> None:
    doc = document("sharing")
    op = doc["paths"]["/v1/conversions"]["post"]
    signed = {"advocacyTenant", "advocacyTimestamp", "advocacySignature"}
    assert len(op["security"]) == 2 and op["security"][0] == {"bearerAuth": []}
    assert set(op["security"][1]) == signed  # the three headers together
    headers = {doc["components"]["securitySchemes"][s]["name"] for s in signed}
    assert headers == {"X-Advocacy-Tenant", "X-Advocacy-Timestamp", "X-Advocacy-Signature"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ConversionIn"}
    assert "ConversionIn" in doc["components"]["schemas"]
    assert {"401", "403", "409", "422"} <= set(op["responses"])
    assert [(p["in"], p["name"]) for p in op["parameters"]] == [("header", "X-Advocacy-Partner")]


def test_the_redirect_is_documented_in_sharing() -> None:
    op = document("sharing")["paths"]["/r/{code}"]["get"]
    assert op["security"] == []
    assert {"302", "404", "410", "429", "503"} <= set(op["responses"])
    assert "Location" in op["responses"]["302"]["headers"]
    assert "Retry-After" in op["responses"]["429"]["headers"]


async def test_docs_let_a_person_paste_a_token_and_keep_it() -> None:
    """Swagger UI shows Authorize for a document with security schemes; persistAuthorization keeps
    the token across reloads. The app is built, not started (no lifespan runs)."""
    from advocacy_common.registry import registration

    reg = registration("content")
    settings = reg.settings_class(
        dev_mode=True, role="all", database_url="postgresql+asyncpg://x@127.0.0.1:5432/x", log_json=False
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        app = reg.create_app(settings)  # create_app configures a process's logging
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://content") as client:
        html = (await client.get("/docs")).text
        served = (await client.get("/openapi.json")).json()
    assert '"persistAuthorization": true' in html
    assert served == document("content")
    assert served["paths"]["/v1/content"]["post"]["security"] == [{"bearerAuth": []}]
