"""The redirect's collector exports exactly the samples it declares (REDIRECT_METRICS), which the
alert and dashboard checks rely on since the collector is registered only when a redirector is made."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from advocacy_sharing.adapters.redirect import REDIRECT_METRICS, Latency, _AnswersCollector


def test_the_collector_exports_the_declared_samples_with_the_redirectors_counts() -> None:
    admission = SimpleNamespace(admit=0.5, lag=0.01, max_lag=0.2, shed=3, shed_loads=1)
    latency = Latency()
    for seconds in (0.0004, 0.003, 0.003, 0.2, 7.0):
        latency.observe(seconds)
    journal = SimpleNamespace(pending_bytes=lambda: 100, total_bytes=lambda: 400, volume_free_ratio=lambda: 0.9)
    redirector: Any = SimpleNamespace(answers={302: 7, 503: 3}, admission=admission, latency=latency, journal=journal)
    samples = {s.name: s for family in _AnswersCollector(redirector).collect() for s in family.samples}
    assert set(samples) == REDIRECT_METRICS
    by_status = {
        fam_sample.labels["status"]: fam_sample.value
        for family in _AnswersCollector(redirector).collect()
        for fam_sample in family.samples
        if fam_sample.name == "advocacy_redirects_total"
    }
    assert by_status == {"302": 7, "503": 3}
    assert samples["advocacy_redirect_admit_ratio"].value == 0.5
    buckets = {
        s.labels["le"]: s.value
        for family in _AnswersCollector(redirector).collect()
        for s in family.samples
        if s.name == "advocacy_redirect_duration_seconds_bucket"
    }
    assert buckets["0.001"] == 1 and buckets["0.005"] == 3 and buckets["0.25"] == 4 and buckets["+Inf"] == 5
    assert samples["advocacy_redirect_duration_seconds_count"].value == 5
    assert abs(samples["advocacy_redirect_duration_seconds_sum"].value - 7.2064) < 1e-9
    journal_bytes = {
        s.labels["kind"]: s.value
        for family in _AnswersCollector(redirector).collect()
        for s in family.samples
        if s.name == "advocacy_click_journal_bytes"
    }
    assert journal_bytes == {"unsent": 100, "total": 400}
    assert samples["advocacy_click_journal_volume_free_ratio"].value == 0.9
