"""Every policy check a service makes goes through the process pool (``advocacy_common.policycheck``,
issue 12): no module that serves requests or consumes events calls the matcher itself. Only pure
domain modules may (they run where they are called: content's domain runs in tests and, given the
pool's results, in features)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ON_THE_LOOP = {
    "check_message",
    "judge_messages",
    "message_length",
    "find_blocked_terms",
    "first_misshapen_term",
    "term_shape_error",
}


def _callers() -> list[str]:
    found: list[str] = []
    for path in sorted((ROOT / "services").glob("*/advocacy_*/**/*.py")):
        rel = path.relative_to(ROOT)
        if "migrations" in rel.parts or rel.name == "domain.py" or "domain" in rel.parts:
            continue
        tree = ast.parse(path.read_text(), str(rel))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "advocacy_common.policy":
                found += [f"{rel}: imports {a.name}" for a in node.names if a.name in ON_THE_LOOP]
            if isinstance(node, ast.Attribute) and node.attr in ON_THE_LOOP:
                found.append(f"{rel}:{node.lineno}: calls .{node.attr}")
    return found


def test_no_service_module_runs_the_matcher_on_its_loop() -> None:
    assert _callers() == []
