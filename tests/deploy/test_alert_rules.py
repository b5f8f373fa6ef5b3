"""The alert and recording rules, run by `promtool test rules` on synthetic series
(deploy/prometheus/alerts.test.yml): every rule has a case where it fires and one where it is quiet.

promtool comes from Debian's `prometheus` package, unpacked into .tools/ by `make promtool` (a
prerequisite of `make test`); no Prometheus server runs. Without it the promtool tests skip, except
under CI=true, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT

PROMETHEUS = ROOT / "deploy/prometheus"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"


def rule_files() -> list[Path]:
    """Every rule file under deploy/prometheus (a YAML file with `groups`)."""
    found = []
    for path in sorted(PROMETHEUS.glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and "groups" in doc:
            found.append(path)
    return found


def promtool() -> str:
    path = ROOT / ".tools" / "promtool"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    on_path = shutil.which("promtool")
    if on_path:
        return on_path
    message = "promtool not found: `make promtool` unpacks it from Debian's prometheus package into .tools/"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{message} (CI=true: the rule tests may not be skipped)", pytrace=False)
    pytest.skip(message)


def test_the_rule_tests_load_every_rule_file() -> None:
    files = rule_files()
    assert files, "no rule files under deploy/prometheus"
    loaded = {(PROMETHEUS / f).resolve() for f in yaml.safe_load(RULE_TESTS.read_text())["rule_files"]}
    assert {f.resolve() for f in files} <= loaded


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    tests: list[dict[str, Any]] = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    alert_cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    expr_cases = [c for t in tests for c in t.get("promql_expr_test", [])]
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    name = rule["alert"]
                    mine = [c for c in alert_cases if c["alertname"] == name]
                    assert any(c.get("exp_alerts") for c in mine), f"{name}: no case where it fires"
                    assert any(not c.get("exp_alerts") for c in mine), f"{name}: no case where it stays quiet"
                    assert rule["annotations"]["runbook_url"].startswith("docs/operations.md#")
                else:
                    name = rule["record"]
                    mine = [c for c in expr_cases if c["expr"].startswith(name)]
                    assert any(c.get("exp_samples") for c in mine), f"{name}: no case with a value"
                    assert any(not c.get("exp_samples") for c in mine), f"{name}: no case without one"


def test_promtool_checks_the_rules() -> None:
    tool = promtool()
    out = subprocess.run([tool, "check", "rules", *map(str, rule_files())], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_rule_tests_pass() -> None:
    tool = promtool()
    out = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
