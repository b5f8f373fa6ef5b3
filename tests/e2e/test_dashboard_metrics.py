"""Issue 15: every Grafana dashboard query and every alert rule names only metrics that the running
services' /metrics expose (the stack runs each service with role ``all``: API and worker parts)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import E2EStack

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
RULE_FILES = [ROOT / "deploy/prometheus/alerts.yml"]

# The samples a family of each type shows in a query (the parser names a counter family without _total).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def sample_names(exposition: str) -> set[str]:
    """Sample names a query may use, from the families listed (a labelled family with no series yet
    is still listed, with its HELP and TYPE)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


def queried_names(expr: str) -> set[str]:
    # $__rate_interval and label values (in quotes) are not metric names
    return set(re.findall(r"\b(advocacy_[a-z0-9_]+)\b", re.sub(r'"[^"]*"', '""', expr)))


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        panels = [*dashboard["panels"], *(p for row in dashboard["panels"] for p in row.get("panels", []))]
        out += [(f"{path.name}: {p['title']}", t["expr"]) for p in panels for t in p.get("targets", [])]
    return out


def rule_queries() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {r.get('alert') or r.get('record')}", r["expr"])
        for path in RULE_FILES
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    ]


async def test_dashboards_and_alerts_query_only_what_the_services_export(stack: E2EStack) -> None:
    exported: set[str] = set()
    for svc in stack.services:
        async with stack.client(svc) as client:
            r = await client.get("/metrics")
            assert r.status_code == 200, r.text
            exported |= sample_names(r.text)
    assert "advocacy_redirect_duration_seconds_bucket" in exported  # sharing's redirect collector
    assert "advocacy_http_requests_total" in exported

    queries = dashboard_queries() + rule_queries()
    assert len(queries) > 20
    unknown = {where: names for where, expr in queries if (names := queried_names(expr) - exported)}
    assert not unknown, f"queried but not exported: {unknown}"
