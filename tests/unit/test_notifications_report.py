"""The weekly report's presentation in notifications (pure): week over week, the adoption rate, the
dedupe key, and the templates' wording of them (the figures themselves are metrics')."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from advocacy_notifications import domain
from advocacy_notifications.adapters import templates


def test_week_over_week() -> None:
    assert domain.change(64, 55) == domain.Change(9, 16)
    assert domain.change(113, 114) == domain.Change(-1, -1)
    assert domain.change(3, 0) == domain.Change(3, None)
    assert domain.change(0, 0) == domain.Change(0, None)
    assert domain.percent(15 / 19) == 78.9 and domain.percent(None) is None
    assert domain.report_key("boss", date(2026, 3, 8)) == "report:boss:2026-03-08"


def change(value: int, previous: int) -> dict[str, Any]:
    return dataclasses.asdict(domain.change(value, previous))


def context(**changes: Any) -> dict[str, Any]:
    zone = ZoneInfo("Europe/Berlin")
    figures = [
        {"key": "shares", "value": 64, "previous": 55, "change": change(64, 55)},
        {"key": "clicks", "value": 0, "previous": 0, "change": change(0, 0)},
        {"key": "reach", "value": 164_286, "previous": 129_786, "change": change(164_286, 129_786)},
        {"key": "conversions", "value": 3, "previous": 0, "change": change(3, 0)},
    ]
    row = {"key": "c1", "label": "<b>Launch</b> & more", "shares": 2, "clicks": 1, "reach": 1200, "conversions": 0}
    return {
        "time_zone": "Europe/Berlin",
        "start": datetime(2026, 3, 2, tzinfo=zone),
        "end": datetime(2026, 3, 8, tzinfo=zone),
        "figures": figures,
        "adoption": {
            "sharers": 15,
            "eligible": 19,
            "rate": domain.percent(15 / 19),
            "previous_sharers": 13,
            "previous_eligible": 20,
            "change": change(15, 13),
        },
        "top_content": [row],
        "top_advocates": [],
        "name": "Ada",
        "unsubscribe_url": "https://example.com/u?token=x",
        **changes,
    }


def test_the_report_templates_word_the_figures_and_escape_names() -> None:
    parts = templates.render("report", context())
    assert parts.subject == "Programme report, week of Mar 2, 2026: 64 shares, 0 clicks"
    assert "Shares: 64 (week before: 55, +9 (+16%))" in parts.text
    assert "Counted clicks: 0 (week before: 0, no change)" in parts.text
    assert "Reach: 164,286 (week before: 129,786, +34,500 (+27%))" in parts.text
    assert "Conversions: 3 (week before: 0, +3 (new))" in parts.text
    assert "Adoption: 15 of 19 eligible people shared (78.9%) (week before: 13 of 20, +2 (+15%))" in parts.text
    assert "1. <b>Launch</b> & more: 1 clicks, 2 shares, 1,200 reach, 0 conversions" in parts.text
    assert "Nobody shared this week." in parts.text
    assert "&lt;b&gt;Launch&lt;/b&gt; &amp; more" in parts.html and "<b>Launch" not in parts.html
    assert '<tr data-figure="reach">' in parts.html and "+34,500 (+27%)" in parts.html


def test_a_tenant_may_reword_the_report_with_its_variables() -> None:
    """The report is a TemplateName with a sample context; the built-in wording itself passes as a
    tenant's override (adapters/overrides.py checks an override against exactly these variables)."""
    from pathlib import Path

    from advocacy_notifications.adapters import overrides

    assert domain.TemplateName("report").value == "report"
    ctx = templates.sample("report")
    assert templates.render("report", ctx).text.startswith("Hello Ann Example,")
    folder = Path(templates.__file__).parent / "templates"
    parts = {"subject": "subject.j2", "text": "txt.j2", "html": "html.j2"}
    over = overrides.validate({part: (folder / f"report.{suffix}").read_text() for part, suffix in parts.items()}, ctx)
    assert templates.render("report", ctx, override=over) == templates.render("report", ctx)
