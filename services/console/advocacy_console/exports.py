"""CSV files of the analytics tables the metrics export does not cover (ROI, adoption), pure.

A cell a spreadsheet would read as a formula (it starts with = + - @, a tab or a carriage return)
gets a leading apostrophe: the notes and currencies come from the API, which is not the reader's
spreadsheet's business to execute. Negative numbers keep their sign (they are numbers, not text).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def _money(m: Any) -> tuple[str, str]:
    return (str(m.get("amount", "")), str(m.get("currency", ""))) if isinstance(m, dict) else ("", "")


def roi_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The ROI report as (measure, amount, currency) rows, the page's table and the CSV alike."""
    cost = report.get("programme_cost") if isinstance(report.get("programme_cost"), dict) else {}
    rows = [("Conversion value", *_money(m)) for m in report.get("conversion_value") or []]
    rows += [
        ("Conversion value (base currency)", *_money(report.get("conversion_value_in_base"))),
        ("Earned media value", *_money(report.get("earned_media_value"))),
        ("Programme fee", *_money((cost or {}).get("fee"))),
        ("Rewards", *_money((cost or {}).get("rewards"))),
        ("Programme cost", *_money((cost or {}).get("total"))),
        ("Net return", *_money(report.get("net_return"))),
        ("ROI", "" if report.get("roi") is None else str(report["roi"]), ""),
    ]
    return rows


def roi_csv(report: dict[str, Any]) -> str:
    return to_csv(("measure", "amount", "currency"), roi_rows(report))


def adoption_csv(report: dict[str, Any]) -> str:
    weeks = [w for w in report.get("weeks") or [] if isinstance(w, dict)]
    return to_csv(
        ("week_start", "new_sharers", "lapsed_sharers"),
        ((w.get("week_start"), w.get("new_sharers"), w.get("lapsed_sharers")) for w in weeks),
    )
