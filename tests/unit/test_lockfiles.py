"""The lock files agree with the pyprojects: nobody adds, removes or moves a dependency without `make lock`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from advocacy_dev.lockfiles import (
    BUILD_LOCK,
    DEV_LOCK,
    DEVTOOLS,
    LOCKS,
    PYPROJECT,
    REGENERATE,
    RUNTIME_LOCK,
    disagreements,
    pins,
    read_inputs,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_locks_match_the_pyprojects() -> None:
    problems = disagreements(ROOT)
    assert not problems, "\n".join([*problems, f"run `{REGENERATE}` and commit requirements/"])


def test_every_locked_package_is_pinned_and_hashed() -> None:
    for lock in LOCKS:
        text = (ROOT / lock).read_text()
        entries = [e for e in text.split("\n") if e and not e.startswith((" ", "#"))]
        assert entries, lock
        for entry in entries:
            assert "==" in entry, f"{lock}: {entry}"
        assert text.count("--hash=sha256:") >= len(entries), f"{lock}: an entry without a hash"


def test_the_image_runs_the_versions_the_tests_run() -> None:
    dev = pins((ROOT / DEV_LOCK).read_text())
    for lock in (RUNTIME_LOCK, BUILD_LOCK):
        for name, versions in pins((ROOT / lock).read_text()).items():
            assert versions <= dev.get(name, set()), f"{lock}: {name} {versions} vs {DEV_LOCK}: {dev.get(name)}"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The pyprojects and locks alone, in a folder a test may change."""
    for path in (PYPROJECT, DEVTOOLS, *LOCKS):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    assert disagreements(tmp_path) == []
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_a_dependency_added_without_locking_is_named(clone: Path) -> None:
    _edit(clone / PYPROJECT, '"fastapi==', '"left-pad-not-locked==1.0.0",\n    "fastapi==')
    problems = disagreements(clone)
    assert any("left-pad-not-locked==1.0.0 is not in requirements/runtime.txt" in p for p in problems), problems
    assert any("left-pad-not-locked==1.0.0 is not in requirements/dev.txt" in p for p in problems), problems


def test_a_moved_pin_is_named_with_the_locked_version(clone: Path) -> None:
    fastapi = next(r for r in read_inputs(clone).runtime if r.startswith("fastapi=="))
    _edit(clone / PYPROJECT, f'"{fastapi}"', '"fastapi==0.0.1"')
    locked = fastapi.split("==")[1]
    assert f"fastapi==0.0.1 but requirements/runtime.txt has fastapi=={locked}" in disagreements(clone)


def test_a_dev_or_tooling_dependency_counts_too(clone: Path) -> None:
    psutil = next(r for r in read_inputs(clone).dev if r.startswith("psutil=="))
    _edit(clone / DEVTOOLS, f'"{psutil}"', '"psutil==0.0.1"')
    assert any(p.startswith("psutil==0.0.1 but requirements/dev.txt") for p in disagreements(clone))


def test_a_removed_dependency_is_caught(clone: Path) -> None:
    """Every remaining pin still matches; the inputs' digest in the lock header does not."""
    cachetools = next(r for r in read_inputs(clone).runtime if r.startswith("cachetools=="))
    text = (clone / PYPROJECT).read_text()
    line = next(ln for ln in text.splitlines() if f'"{cachetools}"' in ln)
    (clone / PYPROJECT).write_text(text.replace(line + "\n", "", 1))
    problems = disagreements(clone)
    assert f"{RUNTIME_LOCK} was locked from other inputs (a requirement added, removed or changed)" in problems


def test_an_unpinned_dependency_is_refused(clone: Path) -> None:
    _edit(clone / PYPROJECT, '"fastapi==', '"left-pad>=1",\n    "fastapi==')
    assert any("'left-pad>=1' is not pinned with ==" in p for p in disagreements(clone))


def test_a_missing_lock_is_named(clone: Path) -> None:
    (clone / BUILD_LOCK).unlink()
    assert f"{BUILD_LOCK} is missing" in disagreements(clone)
