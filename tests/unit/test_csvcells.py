"""CSV exports are safe to open in a spreadsheet (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest

from advocacy_common.csvcells import FORMULA_STARTS, csv_lines, safe_cell

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_text_cell_that_starts_a_formula_is_made_text(start: str) -> None:
    assert safe_cell(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"


def test_other_cells_are_left_alone() -> None:
    assert [safe_cell(v) for v in ("acme.com", "", -3, 2.5, None, "a=b")] == ["acme.com", "", -3, 2.5, None, "a=b"]


def test_the_referrer_of_issue_13_reads_back_as_text() -> None:
    text = csv_lines([["referrer", "=cmd|calc!a0", 3], ["referrer", '@SUM(1+1)*cmd|" /C calc"!A0', -1]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["referrer", "'=cmd|calc!a0", "3"], ["referrer", '\'@SUM(1+1)*cmd|" /C calc"!A0', "-1"]]
