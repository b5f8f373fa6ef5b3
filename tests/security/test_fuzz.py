"""Schemathesis against each service's OpenAPI document, with valid tokens (admin, employee, coach
of a fuzzing tenant): no 500, and no response that breaks its own documented schema.

``FUZZ_CASES`` cases per service (default 30: ``make test``; ``make fuzz`` runs 500 or more). The
cases are drawn by hypothesis from every operation of the document (the SSE stream excepted) and
sent to the security stack's real processes.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.config import SchemathesisConfig

from tests.security.openapi_kit import SERVICES, document
from tests.support.stackkit import PrivateStack

pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("FUZZ_CASES", "30"))
ROLES = ("admin", "employee", "coach")


def _strategy(svc: str) -> Any:
    # NUL characters are in (schemathesis' default): PostgreSQL text cannot hold them, and the
    # services must answer 422 wherever they appear (test_nul_characters.py tries every body field).
    config = SchemathesisConfig.from_dict({"generation": {"allow-x00": True}})
    schema = schemathesis.openapi.from_dict(document(svc), config=config)
    strategies = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path.endswith("/stream"):
            continue
        strategies.append(op.as_strategy())
    assert strategies, svc
    return st.one_of(strategies)


@pytest.mark.parametrize("svc", SERVICES)
def test_fuzz_no_500_and_responses_match_their_schema(svc: str, sec_stack: PrivateStack) -> None:
    tenant = f"fz-{uuid.uuid4().hex[:8]}"
    tokens = {r: sec_stack.token(tenant, f"fuzzer-{r}", r, team="fuzz", name="Fuzz") for r in ROLES}
    base_url = sec_stack.url(svc)
    seen: dict[int, int] = {}
    session = requests.Session()

    @hypothesis.settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
        print_blob=True,
    )
    @given(case=_strategy(svc), role=st.sampled_from(ROLES))
    def run(case: schemathesis.Case, role: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=15)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance], headers=headers)

    try:
        run()
    finally:
        session.close()
    assert sum(seen.values()) >= CASES, seen
    print(f"{svc}: {sum(seen.values())} cases, statuses {dict(sorted(seen.items()))}")
