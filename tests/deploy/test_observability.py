"""Alert rules, the Grafana dashboard and the runbook agree with the metrics the code exports."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.deploy.conftest import ROOT

ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/advocacy.json"
RUNBOOK = ROOT / "docs/operations.md"


def exported_names() -> set[str]:
    """Sample names the processes expose: every collector registered by the observability module
    and the service packages (counters as *_total, histograms as *_bucket/_sum/_count), and the
    redirect's declared samples."""
    import importlib

    from prometheus_client import REGISTRY

    import advocacy_common.observability  # noqa: F401
    from advocacy_sharing.adapters.redirect import REDIRECT_METRICS

    for svc in ("content", "sharing", "metrics", "gamification"):
        importlib.import_module(f"advocacy_{svc}.app")
    # the redirect's collector is registered when a redirector is made: it declares its samples
    return {n for n in REGISTRY._names_to_collectors if n.startswith("advocacy_")} | REDIRECT_METRICS


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(advocacy_[a-z_]+)\b", expr))


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_alert_rules_cover_lag_outbox_errors_and_redirect_latency() -> None:
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    for name in ("AdvocacyConsumerLagGrowing", "AdvocacyOutboxStuck", "AdvocacyHighErrorRate",
                 "AdvocacyRedirectLatencyHigh"):  # fmt: skip
        assert name in alerts
    assert "advocacy_outbox_oldest_age_seconds" in alerts["AdvocacyOutboxStuck"]["expr"]
    assert 'status=~"5.."' in alerts["AdvocacyHighErrorRate"]["expr"]
    assert "advocacy_redirect_duration_seconds_bucket" in alerts["AdvocacyRedirectLatencyHigh"]["expr"]
    assert "histogram_quantile(0.99" in alerts["AdvocacyRedirectLatencyHigh"]["expr"]
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_rules_use_only_exported_metrics() -> None:
    exported = exported_names()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - exported
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_the_redirect_latency_alert_reads_the_redirects_own_histogram() -> None:
    """The redirect is answered in front of the routing (and so of the HTTP metrics middleware): its
    latency is its own histogram, which the alert and the dashboard read."""
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    assert "advocacy_redirect_duration_seconds_bucket" in alerts["AdvocacyRedirectLatencyHigh"]["expr"]
    assert "AdvocacyRedirectLatencyUnmeasured" not in alerts


def test_every_alert_has_a_runbook_section() -> None:
    text = RUNBOOK.read_text()
    anchors = {slug(m) for m in re.findall(r"^#{2,4} (.+)$", text, flags=re.MULTILINE)}
    for rule in rules():
        if "alert" not in rule:
            continue
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/operations.md"
        assert anchor == rule["alert"].lower() and anchor in anchors, f"{rule['alert']}: no section #{anchor}"


def _targets(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_panels_use_exported_metrics_and_cover_the_issue() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    exported = exported_names()
    used: set[str] = set()
    for expr in _targets(dashboard):
        names = metric_names(expr)
        assert names <= exported, f"{expr}: {names - exported}"
        used |= names
    for needed in (
        "advocacy_http_requests_total",
        "advocacy_http_request_duration_seconds_bucket",
        "advocacy_events_published_total",
        "advocacy_events_consumed_total",
        "advocacy_consumer_lag",
        "advocacy_outbox_backlog",
        "advocacy_outbox_oldest_age_seconds",
        "advocacy_redirects_total",
        "advocacy_broker_up",
    ):
        assert needed in used, f"no panel on {needed}"
    assert any("io.advocacy.share.clicked.v1" in e for e in _targets(dashboard))
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"datasource", "service"}
