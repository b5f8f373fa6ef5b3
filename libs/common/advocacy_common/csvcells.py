"""Cells of every CSV export, safe to open in a spreadsheet (OWASP, "CSV Injection").

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula (``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``): it
gets a leading apostrophe, which the spreadsheet shows as text. Numbers are written as numbers (a
negative number is not text and is left alone); quoting of separators and quotes is the ``csv``
module's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV text (``\\n`` line ends), every cell through :func:`safe_cell`."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([safe_cell(c) for c in row] for row in rows)
    return buf.getvalue()
