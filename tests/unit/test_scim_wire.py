"""Content's SCIM wire helpers (adapters/scim.py): filters turned into SQL, paging bounds, and Entra's
manager references completed. The service's own behaviour over HTTP is tests/integration/test_scim_*.py."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Group, InvalidFilterException
from sqlalchemy.dialects import postgresql

from advocacy_content.adapters.scim import (
    ENTERPRISE,
    MAX_COUNT,
    MAX_FILTER_CHARS,
    UserResource,
    filter_clause,
    fold,
    manager_refs,
    page_bounds,
)
from advocacy_content.features.scim import GROUP_FILTERS, USER_FILTERS

pytestmark = pytest.mark.unit


def sql(expression: str, model: Any = UserResource, columns: Any = USER_FILTERS) -> tuple[str, dict[str, Any]]:
    compiled = filter_clause(expression, model, columns).compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    return str(compiled), dict(compiled.params)


def test_eq_filters_become_indexed_comparisons() -> None:
    text, params = sql('userName eq "BJensen@Example.COM"')
    assert text.startswith("scim_users.user_name_key = %(user_name_key_1)s")
    assert params == {"user_name_key_1": "bjensen@example.com"}  # userName is not case-exact
    text, params = sql('externalId eq "AbC"')
    assert params == {"external_id_1": "AbC"}  # externalId is
    text, params = sql('emails.value eq "B@X.com"')
    assert "scim_users.emails @>" in text and list(params.values()) == [["b@x.com"]]
    text, _ = sql('userName eq "a" and (externalId eq "b" or active eq false)')
    assert " AND " in text and " OR " in text
    text, params = sql('displayName eq "Team North"', Group, GROUP_FILTERS)
    assert params == {"display_name_key_1": "team north"}


@pytest.mark.parametrize(
    "expression",
    [
        "userName eq",
        'userName xx "a"',
        '(userName eq "a"',
        'userName co "a"',  # an operator the service does not run
        'not (userName eq "a")',
        "userName pr",
        'title eq "x"',  # an attribute it does not index
        'emails[type eq "work"]',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"',
        'active eq "yes"',
        "x" * (MAX_FILTER_CHARS + 1),
    ],
)
def test_anything_else_is_invalid_filter(expression: str) -> None:
    with pytest.raises(InvalidFilterException):
        sql(expression)


def test_paging_reads_the_rfc_and_is_capped() -> None:
    assert page_bounds(None, None) == (1, MAX_COUNT)
    assert page_bounds(0, 10) == (1, 10)  # startIndex below 1 reads as 1
    assert page_bounds(-5, -5) == (1, 0)  # count below 0 reads as 0
    assert page_bounds(7, 10_000) == (7, MAX_COUNT)
    assert page_bounds(10**12, 1)[0] == 10**9


def test_fold_is_the_comparison_form() -> None:
    assert fold("ÉLISE@Example.com") == fold("élise@example.COM") == "élise@example.com"
    assert fold("e\u0301lise") == fold("élise")  # NFC


def test_entras_manager_gets_a_reference() -> None:
    user = {ENTERPRISE: {"manager": {"value": "m1"}}}
    assert manager_refs(user)[ENTERPRISE]["manager"] == {"value": "m1", "$ref": "../Users/m1"}
    patch = {
        "Operations": [
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "m2"},
            {"op": "replace", "value": {f"{ENTERPRISE}:manager": {"value": "m3"}}},
            {"op": "remove", "path": f"{ENTERPRISE}:manager"},
        ]
    }
    ops = manager_refs(patch)["Operations"]
    assert ops[0]["value"] == {"value": "m2", "$ref": "../Users/m2"}
    assert ops[1]["value"][f"{ENTERPRISE}:manager"] == {"value": "m3", "$ref": "../Users/m3"}
    assert "value" not in ops[2]
    kept = {"value": "m4", "$ref": "https://idp.example/Users/m4"}
    assert manager_refs({ENTERPRISE: {"manager": dict(kept)}})[ENTERPRISE]["manager"] == kept
