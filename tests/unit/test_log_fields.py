"""Log calls carry fields (issue 15): a constant message naming the event and ``extra={...}``, never a
``%``-formatted message whose values the JSON line would hold as one string."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "libs" / "common" / "advocacy_common", ROOT / "libs" / "devtools" / "advocacy_dev"]
SOURCES += sorted((ROOT / "services").glob("*/advocacy_*"))
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
NOT_YET: set[Path] = set()  # files exempt for a while (none now)


def formatted_log_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls ``<x>.info(...)`` etc. whose message is formatted: ``%`` placeholders, arguments after the
    message, or an f-string."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LEVELS):
            continue
        if not node.args:
            continue
        message = node.args[0]
        placeholders = isinstance(message, ast.Constant) and isinstance(message.value, str) and "%" in message.value
        if placeholders or len(node.args) > 1 or isinstance(message, ast.JoinedStr):
            found.append((node.lineno, ast.unparse(node)[:120]))
    return found


def test_the_scan_finds_a_formatted_call() -> None:
    tree = ast.parse(
        'log.warning("%s: skipping key %r", source, kid)\nlog.info(f"{n} deleted")\nlog.info("ok", extra={})'
    )
    assert [line for line, _ in formatted_log_calls(tree)] == [1, 2]


def test_no_log_call_formats_its_message() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {call}"
        for source in SOURCES
        for path in sorted(source.rglob("*.py"))
        if path not in NOT_YET
        for line, call in formatted_log_calls(ast.parse(path.read_text(), str(path)))
    ]
    assert not offenders, "\n".join(offenders)
