"""The lock files: every package the project installs, pinned with its hashes, for Python 3.11-3.13.

    python libs/devtools/advocacy_dev/lockfiles.py           # rewrite requirements/*.txt (`make lock`)
    python libs/devtools/advocacy_dev/lockfiles.py --upgrade # also move unpinned transitives to their newest
    python libs/devtools/advocacy_dev/lockfiles.py --check   # exit 1 when a pyproject and the locks disagree

Three locks, resolved by uv (``uv pip compile --universal --generate-hashes``: one file for every
Python and platform, each line under its environment marker):

- ``requirements/dev.txt``: the project with its ``dev`` extra, the dev tooling (libs/devtools) and
  the build backend. ``make`` installs it with ``pip --require-hashes``, then the local packages
  with ``--no-deps --no-build-isolation``, so nothing floats and nothing is fetched unhashed.
- ``requirements/runtime.txt``: the project's own dependencies, what the image ships.
- ``requirements/build.txt``: the build backend (``[build-system] requires``), for the image's wheel.

The dev lock is resolved first; the other two are constrained by it, so the image runs exactly the
versions the tests ran. A rerun keeps every pin already in a lock (uv prefers the output file's
versions) unless ``--upgrade``: adding one dependency moves only what it needs.

Only the standard library here: ``make lock`` runs it before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = Path("pyproject.toml")
DEVTOOLS = Path("libs/devtools/pyproject.toml")
DEV_LOCK = Path("requirements/dev.txt")
RUNTIME_LOCK = Path("requirements/runtime.txt")
BUILD_LOCK = Path("requirements/build.txt")
LOCKS = (DEV_LOCK, RUNTIME_LOCK, BUILD_LOCK)
INPUTS = Path("requirements/.inputs")
# The oldest Python the project supports; `--universal` resolves for it and every newer one.
PYTHON_FLOOR = "3.11"
# What hatchling asks for to build an editable install (`make` installs the project with
# --no-build-isolation, so the backend comes hashed from the dev lock, not fetched unpinned).
EDITABLE_BACKEND = ("editables==0.6",)
REGENERATE = "make lock"
_DIGEST = re.compile(r"^# inputs: sha256=([0-9a-f]{64})$", re.MULTILINE)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    """PEP 503's normal form: the lock writes ``types-pyyaml`` for ``types-PyYAML``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Inputs:
    """The direct requirements of each lock, as the pyprojects write them."""

    runtime: tuple[str, ...]
    dev: tuple[str, ...]  # the runtime ones, the dev extra, the dev tooling's and the build backend's
    build: tuple[str, ...]

    def digest(self, lock: Path) -> str:
        lines = {DEV_LOCK: self.dev, RUNTIME_LOCK: self.runtime, BUILD_LOCK: self.build}[lock]
        text = "\n".join([PYTHON_FLOOR, *sorted(lines)])
        return hashlib.sha256(text.encode()).hexdigest()


def read_inputs(root: Path = ROOT) -> Inputs:
    project = tomllib.loads((root / PYPROJECT).read_text())
    devtools = tomllib.loads((root / DEVTOOLS).read_text())
    runtime = tuple(project["project"]["dependencies"])
    dev_extra = tuple(project["project"].get("optional-dependencies", {}).get("dev", ()))
    tooling = tuple(devtools["project"]["dependencies"])
    build = tuple(project["build-system"]["requires"])
    return Inputs(runtime=runtime, dev=(*runtime, *dev_extra, *tooling, *build, *EDITABLE_BACKEND), build=build)


def pins(text: str) -> dict[str, set[str]]:
    """Every ``name==version`` line of a requirements file (a name under several markers may have several)."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = _PIN.match(line)
        if m:
            found.setdefault(canonical(m.group(1)), set()).add(m.group(3))
    return found


def disagreements(root: Path = ROOT) -> list[str]:
    """One line per way the pyprojects and the locks disagree; empty when they agree."""
    inputs = read_inputs(root)
    problems: list[str] = []
    wanted = {DEV_LOCK: inputs.dev, RUNTIME_LOCK: inputs.runtime, BUILD_LOCK: inputs.build}
    for lock, requirements in wanted.items():
        path = root / lock
        if not path.exists():
            problems.append(f"{lock} is missing")
            continue
        text = path.read_text()
        locked = pins(text)
        for requirement in requirements:
            m = _PIN.match(requirement)
            if not m:
                problems.append(f"{requirement!r} is not pinned with == (pin new dependencies exactly)")
                continue
            name, version = canonical(m.group(1)), m.group(3)
            if name not in locked:
                problems.append(f"{name}=={version} is not in {lock}")
            elif version not in locked[name]:
                problems.append(f"{name}=={version} but {lock} has {name}=={', '.join(sorted(locked[name]))}")
        digest = _DIGEST.search(text)
        if not digest or digest.group(1) != inputs.digest(lock):
            problems.append(f"{lock} was locked from other inputs (a requirement added, removed or changed)")
    dev = pins((root / DEV_LOCK).read_text()) if (root / DEV_LOCK).exists() else {}
    for lock in (RUNTIME_LOCK, BUILD_LOCK):
        if (root / lock).exists() and dev:
            for name, versions in pins((root / lock).read_text()).items():
                if not versions <= dev.get(name, set()):
                    problems.append(f"{lock} has {name}=={', '.join(sorted(versions))}, unlike {DEV_LOCK}")
    return problems


def _uv() -> str:
    """The uv beside this interpreter, at the version the dev extra pins (installed when missing)."""
    pin = next(r for r in read_inputs().dev if canonical(r.split("==")[0]) == "uv")
    uv = Path(sys.executable).parent / "uv"
    current = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout if uv.exists() else ""
    if current.split()[1:2] != [pin.split("==")[1]]:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pin], check=True)
    return str(uv)


def _compile(uv: str, lock: Path, sources: list[str], digest: str, *, upgrade: bool, constraint: Path | None) -> None:
    args = [uv, "pip", "compile", "--quiet", "--universal", "--python-version", PYTHON_FLOOR]
    args += ["--generate-hashes", "--no-header", "--output-file", str(lock), *sources]
    if constraint:
        args += ["--constraint", str(constraint)]
    if upgrade:
        args.append("--upgrade")
    subprocess.run(args, check=True, cwd=ROOT)
    body = (ROOT / lock).read_text()
    header = (
        f"# {lock}: generated by `{REGENERATE}` (libs/devtools/advocacy_dev/lockfiles.py); do not edit.\n"
        f"# Python {PYTHON_FLOOR}-3.13, every platform. Install with `pip install --require-hashes -r {lock}`.\n"
        f"# inputs: sha256={digest}\n"
    )
    (ROOT / lock).write_text(header + body)


def lock(*, upgrade: bool = False) -> None:
    inputs = read_inputs()
    uv = _uv()
    (ROOT / DEV_LOCK).parent.mkdir(exist_ok=True)
    # The inputs that live in no requirements file, written where the locks' "# via" lines can name
    # them the same on every machine, and removed afterwards.
    scratch = ROOT / INPUTS
    scratch.mkdir(exist_ok=True)
    try:
        build_in = INPUTS / "build-system.in"
        (ROOT / build_in).write_text("\n".join(inputs.build) + "\n")
        editable_in = INPUTS / "editable.in"
        (ROOT / editable_in).write_text("\n".join(EDITABLE_BACKEND) + "\n")
        dev_sources = [str(PYPROJECT), "--extra", "dev", str(DEVTOOLS), str(build_in), str(editable_in)]
        _compile(uv, DEV_LOCK, dev_sources, inputs.digest(DEV_LOCK), upgrade=upgrade, constraint=None)
        _compile(uv, RUNTIME_LOCK, [str(PYPROJECT)], inputs.digest(RUNTIME_LOCK), upgrade=False, constraint=DEV_LOCK)
        _compile(uv, BUILD_LOCK, [str(build_in)], inputs.digest(BUILD_LOCK), upgrade=False, constraint=DEV_LOCK)
    finally:
        shutil.rmtree(scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when a pyproject and the locks disagree")
    parser.add_argument("--upgrade", action="store_true", help="let unpinned transitive dependencies move")
    args = parser.parse_args(argv)
    if args.check:
        problems = disagreements()
        for problem in problems:
            print(f"lock: {problem}", file=sys.stderr)
        if problems:
            print(f"lock: run `{REGENERATE}` and commit requirements/", file=sys.stderr)
        return 1 if problems else 0
    lock(upgrade=args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
