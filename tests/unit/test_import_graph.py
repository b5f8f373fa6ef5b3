"""The import rules hold, and each of them bites (issue 16).

- No import cycle in the library, the dev tooling or the services (grimp, the graph import-linter uses): imports
  inside functions count, imports made only under ``TYPE_CHECKING`` do not.
- The contracts in ``pyproject.toml`` (``make lint`` runs ``lint-imports``) each fail when a
  deliberate violation is added to a copy of the tree.
- The pure-domain contract names every library module that is not declared pure, so a new module
  cannot slip past it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "advocacy_dev": ROOT / "libs" / "devtools",
    "advocacy_common": ROOT / "libs" / "common",
    "advocacy_content": ROOT / "services" / "content",
    "advocacy_sharing": ROOT / "services" / "sharing",
    "advocacy_metrics": ROOT / "services" / "metrics",
    "advocacy_gamification": ROOT / "services" / "gamification",
    "advocacy_notifications": ROOT / "services" / "notifications",
    "advocacy_console": ROOT / "services" / "console",
}
# The library's modules a domain module may import: contracts and vocabularies, no I/O.
PURE = {
    "eligibility",
    "events",
    "instants",
    "languages",
    "money",
    "networks",
    "policy",
    "tenant",
    "topics",
    "urls",
    "webhooks",
}


def cycles() -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), sorted."""
    graph = grimp.build_graph(*SOURCES, exclude_type_checking_imports=True, cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        # iterative depth-first search: (module, its imports left to look at)
        work = [(v, iter(sorted(graph.find_modules_directly_imported_by(v))))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_import_cycle() -> None:
    assert cycles() == []


def test_the_pure_domain_contract_names_every_impure_library_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "pure-domain"]
    forbidden = {m.removeprefix("advocacy_common.") for m in contract["forbidden_modules"]}
    library = SOURCES["advocacy_common"] / "advocacy_common"
    modules = {p.stem for p in library.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in library.iterdir() if (p / "__init__.py").exists()}
    assert modules - PURE - forbidden == set(), "declare each new library module pure or forbid it to domains"
    assert PURE & forbidden == set()


# -- each rule bites --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and the contracts, copied (violations are added to the copy, never the tree)."""
    root = tmp_path_factory.mktemp("imports")
    for package, parent in SOURCES.items():
        shutil.copytree(parent / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copytree(ROOT / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__", "fixtures"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _with_line(path: Path, line: str) -> str:
    original = path.read_text()
    path.write_text(original + f"\n{line}\n")
    return original


def _run(root: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(ROOT)])}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


@pytest.mark.parametrize(
    ("contract", "module", "line"),
    [
        ("services-independent", "advocacy_content/features/content.py", "import advocacy_sharing.adapters.spool"),
        ("library-knows-no-service", "advocacy_common/pagination.py", "import advocacy_metrics.domain"),
        ("pure-domain", "advocacy_gamification/domain/__init__.py", "import sqlalchemy"),
        ("pure-domain", "advocacy_sharing/domain.py", "from advocacy_common import db"),
        ("pure-domain", "advocacy_metrics/domain/roi.py", "import sqlalchemy"),
        ("pure-domain", "advocacy_notifications/domain.py", "from advocacy_common import signing"),
        ("services-independent", "advocacy_notifications/features/copies.py", "import advocacy_content.domain"),
        ("service-anatomy", "advocacy_content/adapters/events.py", "from advocacy_content.features import board"),
        ("service-anatomy", "advocacy_sharing/db.py", "from advocacy_sharing import api"),
        ("service-anatomy", "advocacy_gamification/features/points.py", "from advocacy_gamification import parts"),
        ("no-dev-tooling-in-production", "advocacy_sharing/adapters/redirect.py", "import advocacy_dev.devstack.net"),
        ("console-through-http", "advocacy_console/pages.py", "import advocacy_content.features.board"),
        ("console-through-http", "advocacy_console/upstream.py", "from advocacy_dev.devstack import stack"),
        ("console-holds-no-data", "advocacy_console/upstream.py", "import sqlalchemy"),
        ("console-holds-no-data", "advocacy_console/pages.py", "from advocacy_common import db"),
        ("test-tiers-independent", "tests/e2e/test_content_review.py", "import tests.integration.test_messaging"),
        ("test-support-standalone", "tests/support/helpers.py", "import tests.e2e.conftest"),
        ("no-root-conftest-imports", "tests/e2e/test_content_review.py", "import tests.conftest"),
    ],
)
def test_each_contract_fails_on_a_deliberate_violation(tree_copy: Path, contract: str, module: str, line: str) -> None:
    kept = _run(tree_copy, [LINT_IMPORTS, "--contract", contract])
    assert kept.returncode == 0, kept.stdout + kept.stderr
    original = _with_line(tree_copy / module, line)
    try:
        broken = _run(tree_copy, [LINT_IMPORTS, "--contract", contract, "--no-cache"])
    finally:
        (tree_copy / module).write_text(original)
    assert broken.returncode != 0 and "BROKEN" in broken.stdout, broken.stdout + broken.stderr


def test_the_cycle_check_finds_a_cycle_made_inside_a_function(tree_copy: Path) -> None:
    module = tree_copy / "advocacy_common" / "topics.py"
    original = _with_line(module, "def _late() -> None:\n    from advocacy_common.events import sharing  # noqa")
    try:
        found = _run(
            tree_copy,
            [sys.executable, "-c", "from tests.unit.test_import_graph import cycles; print(cycles())"],
        )
    finally:
        module.write_text(original)
    assert found.returncode == 0, found.stderr
    assert "advocacy_common.topics" in found.stdout and "advocacy_common.events.sharing" in found.stdout, found.stdout
