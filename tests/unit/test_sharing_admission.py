"""Admission control for /r/ (advocacy_sharing/adapters/admission.py): the admit fraction and its effect."""

from __future__ import annotations

from pathlib import Path

from advocacy_sharing.adapters.admission import Admission


def test_a_late_tick_or_two_is_not_overload() -> None:
    a = Admission(budget=0.05)
    a.observe(0.3, rate=5000, dt=0.305)  # a pause: one or two iterations
    a.observe(0.3, rate=5000, dt=0.305)
    assert a.admit == 1.0
    a.observe(0.001, rate=5000, dt=0.006)
    a.observe(0.3, rate=5000, dt=0.305)
    assert a.admit == 1.0


def test_late_ticks_in_a_row_under_traffic_cut_the_admit_fraction_then_it_recovers() -> None:
    a = Admission(budget=0.05, min_admit=0.02)
    a.observe(0.1, rate=5000, dt=0.105)
    a.observe(0.1, rate=5000, dt=0.105)
    assert a.admit == 1.0  # two late iterations: a pause still
    a.observe(0.1, rate=5000, dt=0.105)
    assert a.admit == 0.5  # the budget over the lag
    a.observe(0.4, rate=5000, dt=0.405)
    assert a.admit == 0.125  # never more than x0.25 a tick
    for _ in range(20):
        a.observe(0.4, rate=5000, dt=0.405)
    assert a.admit == 0.02  # never below the floor
    ticks = 0
    while a.admit < 1.0:
        a.observe(0.001, rate=5000, dt=0.006)
        ticks += 1
    assert 0.5 < ticks * 0.006 < 5  # back to everything within seconds, not at once


def test_a_late_process_without_traffic_does_not_shed() -> None:
    a = Admission(budget=0.05, min_rate=200)
    for _ in range(10):
        a.observe(0.2, rate=50, dt=0.205)  # a crowded machine, a trickle of clicks
    assert a.admit == 1.0


def test_the_admitted_share_is_spread_evenly() -> None:
    a = Admission()
    a.admit = 0.25
    decisions = [a.allow() for _ in range(400)]
    assert sum(decisions) == 100
    assert a.shed == 300
    assert all(sum(decisions[i : i + 8]) == 2 for i in range(0, 400, 8))


def test_a_zero_budget_disables_shedding() -> None:
    a = Admission(budget=0)
    assert not a.enabled


async def test_a_shed_request_is_a_503_with_retry_after_and_journals_nothing(tmp_path: Path) -> None:
    from typing import Any

    from advocacy_sharing.adapters.redirect import LinkCache, LinkTarget, Redirector
    from advocacy_sharing.adapters.spool import ClickJournal
    from advocacy_sharing.settings import SharingSettings

    settings = SharingSettings(dev_mode=True)
    cache = LinkCache(None)  # type: ignore[arg-type]  # never reads: the link is put below
    code = "AbCdEf1234"
    cache.put(code, LinkTarget("t", "c", "linkedin", b"https://example.com/?adv_click=", b"", None, False, 0.0))
    journal = ClickJournal(tmp_path)
    journal.open()
    r = Redirector(settings, cache, journal)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"path": f"/r/{code}", "method": "GET", "headers": [(b"user-agent", b"x")], "client": ("1.2.3.4", 1)}
    await r(scope, send)
    assert sent[0]["status"] == 302 and journal.appended == 1
    r.admission.admit = 0.5
    sent.clear()
    for _ in range(4):
        await r(scope, send)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert sorted(statuses) == [302, 302, 503, 503]
    busy = next(m for m in sent if m.get("status") == 503)
    assert (b"retry-after", b"1") in busy["headers"]
    assert journal.appended == 3 and len(journal.read()[0]) == 3  # the two 503s journaled nothing
    journal.close()
