"""Fail points: parsing, and a real process dying by SIGKILL at exactly the armed hit."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from advocacy_common.failpoints import ENV, parse

_SCRIPT = """
import sys
from advocacy_common import failpoints
for i in range(1, 6):
    print(i, flush=True)
    failpoints.hit("demo.point")
    failpoints.hit("other.point")
"""


def _run(spec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT], env={ENV: spec, "PATH": ""}, capture_output=True, text=True, timeout=30
    )


def test_parse_accepts_nth_and_probability() -> None:
    points = parse(" a.b=nth:3 , c=p:0.25,")
    assert points["a.b"].nth == 3 and points["a.b"].probability == 0.0
    assert points["c"].nth is None and points["c"].probability == 0.25
    assert parse("") == {}


@pytest.mark.parametrize("spec", ["a", "a=nth", "a=nth:0", "a=nth:x", "a=p:1.5", "a=kill:1", "=nth:1"])
def test_parse_refuses_what_would_silently_disarm(spec: str) -> None:
    with pytest.raises(ValueError):
        parse(spec)


def test_process_dies_by_sigkill_at_the_nth_hit() -> None:
    done = _run("demo.point=nth:3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["1", "2", "3"]
    assert "failpoint demo.point: SIGKILL (hit 3)" in done.stderr


def test_unarmed_points_and_certain_probability() -> None:
    assert _run("").returncode == 0
    assert _run("demo.point=p:0").returncode == 0
    died = _run("other.point=p:1")
    assert died.returncode == -signal.SIGKILL and died.stdout.split() == ["1"]
