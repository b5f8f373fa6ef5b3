"""The console's pure form <-> API translations (issue 20): the content editor, the rules form and
its simulation table, the top lists, and the CSV of the tables metrics does not export."""

from __future__ import annotations

import csv
import io

import pytest

from advocacy_console import exports, forms


def editor_form(**kw: str) -> dict[str, str]:
    return {"title": " Launch ", "url": "https://example.com/a", **kw}


def test_the_editor_form_is_a_content_create_with_targeting_schedule_and_captions() -> None:
    body = forms.content_body(
        editor_form(
            teams="team-a, team-b,,team-a",
            departments="Sales",
            locations="Berlin, Paris",
            role_champion="on",
            tags="launch",
            publish_at="2026-12-04T09:30",
            expires_at="2026-12-31T18:00",
            caption_linkedin="Proud",
            caption_x="  ",
            caption_bluesky="Hi",
        )
    )
    assert body == {
        "title": "Launch",
        "url": "https://example.com/a",
        "body": None,
        "tags": ["launch"],
        "captions": {"linkedin": "Proud", "bluesky": "Hi"},
        "audience": {
            "teams": ["team-a", "team-b"],
            "departments": ["Sales"],
            "locations": ["Berlin", "Paris"],
            "topics": [],
            "programme_roles": ["champion"],
        },
        "publish_at": "2026-12-04T09:30:00Z",
        "expires_at": "2026-12-31T18:00:00Z",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"publish_at": "tomorrow"}, "Publish at"),
        ({"expires_at": "2026-13-01T00:00"}, "Expires at"),
        ({"publish_at": "2026-12-04T09:30", "expires_at": "2026-12-04T09:30"}, "after the publication"),
    ],
)
def test_a_bad_time_names_its_field(fields: dict[str, str], message: str) -> None:
    with pytest.raises(forms.FormError, match=message):
        forms.content_body(editor_form(**fields))


def test_lists_are_bounded() -> None:
    body = forms.content_body(editor_form(teams=",".join(f"t{i}" for i in range(500))))
    assert len(body["audience"]["teams"]) == forms.MAX_AUDIENCE_VALUES


def test_an_item_round_trips_through_the_editor_and_a_patch_sends_only_changes() -> None:
    item = {
        "title": "Launch",
        "url": "https://example.com/a",
        "body": "Text",
        "tags": ["a", "b"],
        "captions": {"x": "Short"},
        "audience": {"teams": ["team-a"], "departments": [], "locations": ["Berlin"], "programme_roles": ["creator"]},
        "publish_at": "2026-12-04T10:30:00+01:00",
        "expires_at": None,
    }
    values = forms.content_values(item)
    assert values["publish_at"] == "2026-12-04T09:30" and values["expires_at"] == ""
    assert values["teams"] == "team-a" and values["caption_x"] == "Short" and values["caption_linkedin"] == ""
    assert values["topics"] == "" and values["locations"] == "Berlin" and values["role_creator"] == "on"
    before = forms.content_body(values)
    assert forms.changed_fields(before, before) == {}
    after = forms.content_body({**values, "caption_linkedin": "New", "expires_at": "2027-01-01T00:00", "body": ""})
    assert forms.changed_fields(after, before) == {
        "captions": {"linkedin": "New", "x": "Short"},
        "expires_at": "2027-01-01T00:00:00Z",
        "body": None,  # emptied: cleared
    }


CURRENT_RULES = {
    "version": 3,
    "points": {
        "share": 10,
        "click": 1,
        "suggestion_approved": 15,
        "conversion": {"signup": 20, "lead": 30, "sale": 50},
    },
    "daily_caps": {"share": None, "click": 50, "conversion": None, "suggestion_approved": None},
    "multipliers": [
        {"name": "launch", "factor": "2", "actions": ["share"], "content_ids": None, "starts_at": None, "ends_at": None}
    ],
    "badges": {
        "first_share": 1,
        "share_milestone": 10,
        "click_milestone": 100,
        "first_conversion": 1,
        "sharing_streak": 4,
    },
    "share_points_per": "content",
    "scheduled": [],
}


def test_the_rules_form_round_trips_and_keeps_what_it_does_not_edit() -> None:
    values = forms.rules_values(CURRENT_RULES)
    assert values["points_share"] == "10" and values["cap_click"] == "50" and values["cap_share"] == ""
    body = forms.rules_body({**values, "points_click": "3", "share_points_per": "network"}, CURRENT_RULES)
    assert body["points"] == {
        "share": 10,
        "click": 3,
        "suggestion_approved": 15,
        "conversion": {"signup": 20, "lead": 30, "sale": 50},
    }
    assert body["daily_caps"] == {"share": None, "click": 50, "conversion": None, "suggestion_approved": None}
    assert body["multipliers"] == CURRENT_RULES["multipliers"] and body["badges"] == CURRENT_RULES["badges"]
    assert body["share_points_per"] == "network"


@pytest.mark.parametrize("value", ["", "x", "-1", "1000001", "1.5"])
def test_a_points_value_must_be_a_bounded_whole_number(value: str) -> None:
    values = forms.rules_values(CURRENT_RULES)
    with pytest.raises(forms.FormError, match="Points per share"):
        forms.rules_body({**values, "points_share": value}, CURRENT_RULES)


def test_simulation_rows_show_before_after_and_the_move() -> None:
    rows = forms.simulation_rows(
        [
            {
                "rank": 1,
                "employee_id": "bob",
                "name": "Bob",
                "team": "b",
                "points": 40,
                "current_points": 20,
                "current_rank": 2,
            },
            {
                "rank": 2,
                "employee_id": "ann",
                "name": None,
                "team": None,
                "points": 30,
                "current_points": 30,
                "current_rank": 1,
            },
            {
                "rank": 3,
                "employee_id": None,
                "name": None,
                "team": None,
                "points": 5,
                "current_points": 0,
                "current_rank": None,
            },
        ]
    )
    assert [(r["who"], r["moved"], r["delta"]) for r in rows] == [
        ("Bob", 1, 20),
        ("ann", -1, 0),
        ("anonymous", None, 5),
    ]
    assert rows[0]["before_rank"] == 2 and rows[0]["after_rank"] == 1


def test_roi_and_adoption_csv() -> None:
    report = {
        "roi": "1.5000",
        "conversion_value": [{"amount": "100.00", "currency": "EUR"}],
        "conversion_value_in_base": {"amount": "100.00", "currency": "EUR"},
        "earned_media_value": {"amount": "20.00", "currency": "EUR"},
        "programme_cost": {
            "fee": {"amount": "40.00", "currency": "EUR"},
            "rewards": {"amount": "8.00", "currency": "EUR"},
            "total": {"amount": "48.00", "currency": "EUR"},
        },
        "net_return": {"amount": "-72.00", "currency": "=HYPERLINK(1)"},
    }
    rows = list(csv.reader(io.StringIO(exports.roi_csv(report))))
    assert rows[0] == ["measure", "amount", "currency"]
    assert ["Programme cost", "48.00", "EUR"] in rows and ["ROI", "1.5000", ""] in rows
    assert ["Net return", "-72.00", "'=HYPERLINK(1)"] in rows  # a number keeps its sign; a formula is text
    weeks = {"weeks": [{"week_start": "2026-11-30", "new_sharers": 3, "lapsed_sharers": 1}]}
    assert exports.adoption_csv(weeks) == "week_start,new_sharers,lapsed_sharers\r\n2026-11-30,3,1\r\n"
