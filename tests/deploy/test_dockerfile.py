"""The Dockerfile, read as instructions (no Docker engine here): multi-stage, slim, non-root, healthy."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from types import ModuleType

import pytest

from tests.deploy.conftest import ROOT, SERVICES, settings_classes


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [args for o, args in self.instructions if o == op]


def _instructions(text: str) -> list[tuple[str, str]]:
    logical: list[str] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        logical.append(buf + stripped)
        buf = ""
    out = []
    for instr in logical:
        op, _, args = instr.partition(" ")
        out.append((op.upper(), args.strip()))
    return out


def parse() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for op, rest in _instructions((ROOT / "Dockerfile").read_text()):
        if op == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, flags=re.IGNORECASE)
            assert m, rest
            base = re.sub(r"\$\{(\w+)\}", lambda g: args.get(g.group(1), g.group(0)), m.group(1))
            stages.append(Stage(base=base, name=m.group(2)))
        elif not stages and op == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            assert stages, f"{op} before the first FROM"
            stages[-1].instructions.append((op, rest))
    return args, stages


# The base: Debian's current stable release (13, trixie; bookworm is oldstable) with the newest Python
# the project supports and `make test-matrix` runs. Move both on when Debian or Python moves on.
BASE = re.compile(r"python:3\.13(\.\d+)?-slim-trixie(@sha256:[0-9a-f]{64})?")


def test_multi_stage_on_a_current_slim_python_base() -> None:
    _, stages = parse()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    for stage in stages:
        assert BASE.fullmatch(stage.base), stage.base
    final = stages[-1]
    assert any("--from=" in c for c in final.all("COPY")), "the runtime stage copies the built environment"


def test_final_stage_runs_as_a_non_root_user() -> None:
    final = parse()[1][-1]
    users = final.all("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"


def test_no_build_tools_in_the_final_stage() -> None:
    build, final = parse()[1][0], parse()[1][-1]
    final_text = " ".join(a for _, a in final.instructions).lower()
    for tool in ("gcc", "build-essential", "g++", "make ", "apt-get install", "libpq-dev"):
        assert tool not in final_text, f"{tool!r} in the runtime stage"
    # The project is installed in the build stage, as a wheel, without the embedded/dev extras.
    installs = [r for r in build.all("RUN") if "pip install" in r or "pip wheel" in r]
    assert any(re.search(r"pip install --no-deps \S*advocacy-\*\.whl", r) for r in installs), installs
    assert not any("[embedded" in r or "[dev" in r or "-e " in r for r in installs), installs


def _pip_commands(run: str) -> list[str]:
    return [part.strip() for part in re.split(r"&&|;", run) if re.search(r"\bpip (install|wheel)\b", part)]


def test_every_package_comes_from_a_hashed_lock() -> None:
    build = parse()[1][0]
    commands = [c for r in build.all("RUN") for c in _pip_commands(r)]
    assert commands, "the build stage installs with pip"
    locks = [c for c in commands if "-r requirements/" in c]
    assert any("-r requirements/runtime.txt" in c for c in locks), commands
    for command in locks:
        assert "--require-hashes" in command, f"a lock installed without hash checking: {command}"
    for command in set(commands) - set(locks):
        # Anything else is the project itself: no dependency resolution, no fetched build backend.
        assert "--no-deps" in command, f"pip may resolve (and float) dependencies here: {command}"
        if re.search(r"\bpip wheel\b", command):
            assert "--no-build-isolation" in command, f"the build backend would be fetched unhashed: {command}"
    assert not any("--upgrade" in c for c in commands), "an upgrade floats"


def test_dependency_layer_comes_before_the_source() -> None:
    """Copying only the locks, then installing them, keeps that layer cached across source changes."""
    build = parse()[1][0]
    ops = build.instructions
    copies = [(i, args) for i, (op, args) in enumerate(ops) if op == "COPY" and "--from=" not in args]
    lock_copies = [i for i, args in copies if all(s.startswith("requirements/") for s in args.split()[:-1])]
    source_copies = [i for i, args in copies if i not in lock_copies]
    assert lock_copies, "the locks are copied on their own"
    assert source_copies, "the source is copied"
    first_source = min(source_copies)
    assert max(lock_copies) < first_source
    installs = [i for i, (op, args) in enumerate(ops) if op == "RUN" and "-r requirements/runtime.txt" in args]
    assert installs, "the runtime lock is installed"
    assert all(max(lock_copies) < i < first_source for i in installs), (
        "the dependencies install before the source arrives"
    )


def test_healthcheck_calls_healthz_with_python() -> None:
    final = parse()[1][-1]
    checks = final.all("HEALTHCHECK")
    assert len(checks) == 1
    cmd = json.loads(checks[0].split("CMD", 1)[1].strip())
    assert cmd[0] == "python"
    assert (ROOT / "deploy/docker/healthcheck.py").exists()
    assert "/healthz" in (ROOT / "deploy/docker/healthcheck.py").read_text()


def test_service_build_arg_selects_the_console_script() -> None:
    final = parse()[1][-1]
    assert any(a.startswith("SERVICE") for a in final.all("ARG"))
    runs = " ".join(final.all("RUN"))
    assert "advocacy-${SERVICE}" in runs, "the default command links the chosen service's console script"
    for svc in SERVICES:
        assert svc in runs, f"the SERVICE check accepts {svc}"
    cmd = json.loads(final.all("CMD")[-1])
    assert cmd == ["advocacy-service", "serve"], "exec form, so the app is PID 1 and gets SIGTERM"
    env = " ".join(final.all("ENV"))
    for svc in SERVICES:
        assert f"{svc.upper()}_HOST=0.0.0.0" in env, "listen on every interface inside a container"


def test_dockerignore_sends_only_what_the_build_needs() -> None:
    lines = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "**", "ignore everything, then allow"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {
        "requirements/runtime.txt",
        "requirements/build.txt",
        "pyproject.toml",
        "libs",
        "services",
        "deploy/docker",
    }
    _, stages = parse()
    for stage in stages:
        for copy in stage.all("COPY"):
            if "--from=" in copy:
                continue
            for src in copy.split()[:-1]:
                if not src.startswith("--"):
                    assert any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed), src


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("advocacy_healthcheck", ROOT / "deploy/docker/healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_script_knows_each_services_port() -> None:
    hc = _healthcheck_module()
    for svc, cls in settings_classes().items():
        assert hc.DEFAULT_PORTS[svc] == cls.default_port
        assert hc.health_url({"ADVOCACY_SERVICE": svc}) == f"http://127.0.0.1:{cls.default_port}/healthz"
    assert hc.health_url({"ADVOCACY_SERVICE": "sharing", "SHARING_PORT": "9000"}) == "http://127.0.0.1:9000/healthz"
    with pytest.raises(ValueError):
        hc.health_url({})
    assert hc.main() == 1  # nothing listens here: unhealthy, not a crash
