"""The service anatomy of ADR 0006, kept: what may sit at a service's root, what its folders hold,
consumer declarations that only declare, routes without SQL, and every consumer handler living with
the use cases of its feature."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from advocacy_common.consumer import ConsumerSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    name: ROOT / "services" / name / f"advocacy_{name}"
    for name in ("content", "sharing", "metrics", "gamification", "notifications")
}

FIXED = {"__init__.py", "__main__.py", "app.py", "settings.py", "schemas.py", "db.py", "consumers.py", "migrations"}
EITHER = {"api", "domain"}  # a module, or a package once it is large
OPTIONAL = {"parts.py", "cli.py", "features", "adapters"}
SQL = ("sqlalchemy", "sqlmodel", "asyncpg")


def _entries(package: Path) -> set[str]:
    return {p.name for p in package.iterdir() if p.name != "__pycache__"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _api_modules(package: Path) -> list[Path]:
    api = package / "api"
    return sorted(api.glob("*.py")) if api.is_dir() else [package / "api.py"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_root_holds_only_the_fixed_files(name: str) -> None:
    package = SERVICES[name]
    entries = _entries(package)
    assert entries >= FIXED, f"missing: {FIXED - entries}"
    for part in EITHER:
        assert (f"{part}.py" in entries) != (part in entries), f"{part}: one module or one package"
    allowed = FIXED | OPTIONAL | {f"{p}.py" for p in EITHER} | EITHER
    assert entries <= allowed, f"not in the anatomy (ADR 0006): {sorted(entries - allowed)}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_consumers_only_declare(name: str) -> None:
    tree = ast.parse((SERVICES[name] / "consumers.py").read_text())
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    assert defined == [], f"handlers live with their feature's use cases, not in consumers.py: {defined}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_consumer_handler_lives_in_a_feature(name: str) -> None:
    specs: list[ConsumerSpec] = importlib.import_module(f"advocacy_{name}.consumers").CONSUMERS
    assert specs
    for spec in specs:
        assert spec.handler.__module__.startswith(f"advocacy_{name}.features."), (
            spec.group_id,
            spec.handler.__module__,
        )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_routes_hold_no_sql(name: str) -> None:
    for path in _api_modules(SERVICES[name]):
        sql = {m for m in _imports(path) if m.split(".")[0] in SQL}
        assert not sql, f"{path.relative_to(ROOT)} imports {sorted(sql)}: SQL belongs to a feature"


@pytest.mark.parametrize("name", sorted(n for n, p in SERVICES.items() if (p / "api").is_dir()))
def test_an_api_package_is_named_by_feature(name: str) -> None:
    package = SERVICES[name]
    features = {p.stem for p in (package / "features").glob("*.py")}
    for path in _api_modules(package):
        if path.stem not in {"__init__", "deps"}:
            assert path.stem in features, f"api/{path.name} has no features/{path.name}"
