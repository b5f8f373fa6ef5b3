"""Measure formulas, currency conversion, ROI, ranges and adoption weeks (pure)."""

from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.errors import Unprocessable
from advocacy_common.money import Money
from advocacy_common.tenant import TenantSettings
from advocacy_metrics.adapters import ranges
from advocacy_metrics.domain import VERDICTS, Sum, adoption, roi
from advocacy_metrics.domain.measures import GroupTotals, Pricing, StatSums, amount_str, measures, page_measures

SETTINGS = TenantSettings(
    base_currency="EUR",
    exchange_rates={"USD": Decimal("0.9")},
    brand_audience={"linkedin": 1000, "x": 500},
    programme_cost=Money(amount=Decimal(300), currency="EUR"),
    cpc={"linkedin": Money(amount=Decimal("0.50"), currency="EUR"), "x": Money(amount=Decimal("0.20"), currency="EUR")},
    cpm={"linkedin": Money(amount=Decimal(10), currency="EUR")},
)
PRICING = Pricing.of(SETTINGS)


def stats(shares: int, reach: int, **clicks: int) -> StatSums:
    s = StatSums(shares, reach)
    s.clicks.update(clicks)
    return s


def group() -> GroupTotals:
    return GroupTotals(
        by_network={"linkedin": stats(1, 400, counted=4, bot=1), "x": stats(1, 200, counted=2, self=1)},
        conversions={
            ("sale", "EUR"): Sum(1, Decimal(100)),
            ("signup", ""): Sum(1, Decimal(0)),
            ("lead", "USD"): Sum(2, Decimal("50.5")),
        },
    )


def test_measures_by_hand() -> None:
    m = measures(group(), PRICING)
    assert m["shares"] == 2
    assert m["reach"] == 600
    assert m["clicks"] == 6
    assert m["clicks_by_verdict"] == {
        "counted": 6,
        "bot": 1,
        "duplicate": 0,
        "self": 1,
        "rate_limited": 0,
        "invalidated": 0,
    }
    assert m["click_through"] == 6 / 2
    assert m["conversions"] == 4
    assert m["conversions_by_kind"] == {"lead": 2, "sale": 1, "signup": 1}
    assert m["conversion_value"] == [{"amount": "100.00", "currency": "EUR"}, {"amount": "50.50", "currency": "USD"}]
    assert m["conversion_rate"] == 4 / 6
    assert m["amplification"] == 600 / 1500
    # linkedin 4 x 0.50 + 400/1000 x 10; x 2 x 0.20 (no CPM for x)
    assert m["earned_media_value"] == [{"amount": "6.40", "currency": "EUR"}]


_NETWORKS = ("linkedin", "x", "facebook", "xing")
_CURRENCIES = st.sampled_from(["EUR", "USD", ""])
_AMOUNTS = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)
_PRICES = st.dictionaries(st.sampled_from(_NETWORKS), st.tuples(_CURRENCIES, _AMOUNTS))


@given(
    pricing=st.builds(
        Pricing, cpc=_PRICES, cpm=_PRICES, brand=st.dictionaries(st.sampled_from(_NETWORKS), st.integers(1, 10**7))
    ),
    by_network=st.dictionaries(
        st.sampled_from(_NETWORKS),
        st.lists(st.integers(0, 10**9), min_size=2 + len(VERDICTS), max_size=2 + len(VERDICTS)),
    ),
    conversions=st.dictionaries(
        st.tuples(st.sampled_from(["sale", "lead", "signup"]), _CURRENCIES),
        st.builds(Sum, st.integers(0, 10**6), _AMOUNTS),
    ),
)
def test_page_measures_equal_the_measures_of_the_group(
    pricing: Pricing, by_network: dict[str, list[int]], conversions: dict[tuple[str, str], Sum]
) -> None:
    """A page's item built straight from its stats rows equals the measures of the group those rows
    make (the old path, kept as this oracle): the same keys, in the same order, the same values."""
    rows = [("e1", network, *counters) for network, counters in by_network.items()]
    g = GroupTotals(
        {n: StatSums(c[0], c[1], dict(zip(VERDICTS, c[2:], strict=True))) for n, c in by_network.items()},
        dict(conversions),
    )
    want = {"key": "e1", **measures(g, pricing)}
    assert list(page_measures("e1", rows, conversions, pricing).items()) == list(want.items())


def test_network_scope_and_empty_denominators() -> None:
    m = measures(group(), PRICING, scope=["x"])
    assert m["amplification"] == 200 / 500  # only the reach and brand audience on the networks in scope
    only_x = measures(GroupTotals(by_network={"x": stats(1, 200)}), PRICING, scope=["x"])
    assert only_x["amplification"] == 200 / 500
    empty = measures(GroupTotals(), Pricing.of(TenantSettings()))
    assert empty["click_through"] is None
    assert empty["conversion_rate"] is None
    assert empty["amplification"] is None
    assert empty["earned_media_value"] == []
    dims = measures(group(), PRICING, with_shares=False)
    assert dims["shares"] is None and dims["reach"] is None and dims["earned_media_value"] is None
    assert dims["conversion_rate"] == 4 / 6


def test_amount_strings() -> None:
    assert amount_str(Decimal("12.5")) == "12.50"
    assert amount_str(Decimal("0.0125")) == "0.0125"
    assert amount_str(Decimal("0.00005")) == "0.00"  # half-even at 4 places
    assert amount_str(Decimal("-148.1")) == "-148.10"
    assert amount_str(Decimal(3)) == "3.00"


def test_currency_conversion_reports_missing_rates_apart() -> None:
    c = roi.to_base({"EUR": Decimal(10), "USD": Decimal(10), "GBP": Decimal(5), "": Decimal(0)}, SETTINGS)
    assert c.base == Decimal(10) + Decimal(10) * Decimal("0.9")
    assert c.excluded == {"GBP": Decimal(5)}


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 1), date(2026, 3, 31), Decimal(300)),
        (date(2026, 3, 1), date(2026, 3, 1), Decimal(300) / 31),
        (date(2026, 2, 15), date(2026, 3, 14), Decimal(300) * 14 / 28 + Decimal(300) * 14 / 31),
        (date(2026, 1, 1), date(2026, 12, 31), Decimal(3600)),
    ],
)
def test_fee_is_prorated_per_calendar_month(start: date, end: date, expected: Decimal) -> None:
    assert roi.prorated_fee(SETTINGS.programme_cost, start, end) == expected


@given(st.dates(date(2024, 1, 1), date(2027, 12, 31)), st.integers(0, 800))
def test_fee_is_additive_over_adjacent_ranges(start: date, days: int) -> None:
    from datetime import timedelta

    mid = start + timedelta(days=days // 2)
    end = start + timedelta(days=days)
    whole = roi.prorated_fee(SETTINGS.programme_cost, start, end)
    parts = roi.prorated_fee(SETTINGS.programme_cost, start, mid) + roi.prorated_fee(
        SETTINGS.programme_cost, mid + timedelta(days=1), end
    )
    assert abs(whole - parts) < Decimal("1e-20")


def test_roi_by_hand() -> None:
    r = roi.roi_report(
        conversion_value={"EUR": Decimal(100), "USD": Decimal(70), "GBP": Decimal(10)},
        earned_media_value={"EUR": Decimal("13.90")},
        rewards={"EUR": Decimal(25)},
        settings=SETTINGS,
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
    )
    value = Decimal(100) + Decimal(70) * Decimal("0.9")
    cost = Decimal(300) + Decimal(25)
    assert r["conversion_value_in_base"] == {"amount": "163.00", "currency": "EUR"}
    assert r["programme_cost"]["total"] == {"amount": "325.00", "currency": "EUR"}
    assert r["roi"] == format(((value + Decimal("13.90") - cost) / cost).quantize(Decimal("0.0001")), "f")
    assert r["excluded"] == [{"what": "conversion_value", "amount": "10.00", "currency": "GBP"}]
    assert "GBP" in r["notes"][0] and "left out of ROI" in r["notes"][0]


def test_roi_undefined_without_cost_or_with_an_unconvertible_cost() -> None:
    common = {"conversion_value": {}, "earned_media_value": {}, "start": date(2026, 3, 1), "end": date(2026, 3, 31)}
    none = roi.roi_report(rewards={}, settings=TenantSettings(), **common)  # type: ignore[arg-type]
    assert none["roi"] is None and "no programme cost" in none["notes"][0]
    gbp = roi.roi_report(rewards={"GBP": Decimal(5)}, settings=SETTINGS, **common)  # type: ignore[arg-type]
    assert gbp["roi"] is None and "ROI is undefined" in gbp["notes"][0]


def test_ranges() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    today = date(2026, 6, 30)
    r = ranges.resolve("2026-03-01", "2026-03-31", berlin, today)
    assert (r.start, r.end, r.days) == (date(2026, 3, 1), date(2026, 3, 31), 31)
    # an instant counts as the tenant's day it falls on
    assert ranges.resolve("2026-02-28T23:30:00Z", None, berlin, today).start == date(2026, 3, 1)
    default = ranges.resolve(None, None, berlin, today)
    assert (default.start, default.end) == (date(2026, 6, 1), today)
    for raw_from, raw_to, field in (
        ("2026-04-01", "2026-03-31", "from"),
        ("2023-01-01", "2026-01-02", "to"),
        ("yesterday", None, "from"),
        (None, "2026-13-01", "to"),
        ("2026-03-01T10:00:00", None, "from"),
    ):
        with pytest.raises(Unprocessable) as e:
            ranges.resolve(raw_from, raw_to, berlin, today)
        assert e.value.details[0]["field"] == field
    assert ranges.resolve("2023-01-01", "2025-12-31", berlin, today).days == 1096  # three years fit
    assert ranges.resolve_optional(None, None, berlin, today) is None


def test_adoption_weeks_clip_to_the_range_and_ignore_future_lapses() -> None:
    r = adoption.adoption_report(
        start=date(2026, 3, 1),  # a Sunday
        end=date(2026, 3, 10),
        as_of=date(2026, 3, 8),
        week_start_index=0,
        enrolled=4,
        active_members=3,
        active_sharers=5,
        new_by_day={date(2026, 3, 1): 1, date(2026, 3, 3): 2},
        lapsed_by_day={date(2026, 3, 4): 1, date(2026, 3, 9): 7},
    )
    assert r["active_rate"] == 3 / 4
    assert [(w["week_start"], w["new_sharers"], w["lapsed_sharers"]) for w in r["weeks"]] == [
        ("2026-02-23", 1, 0),
        ("2026-03-02", 2, 1),
        ("2026-03-09", 0, 0),
    ]


def test_adoption_divides_by_the_eligible_workforce_and_reports_this_week_and_month() -> None:
    base: dict[str, Any] = {
        "start": date(2026, 3, 1),
        "end": date(2026, 3, 31),
        "as_of": date(2026, 3, 26),  # a Thursday
        "week_start_index": 6,  # weeks start on Sunday: this week is 22-26 March
        "enrolled": 4,
        "active_members": 3,
        "active_sharers": 5,
        "new_by_day": {},
        "lapsed_by_day": {},
    }
    r = adoption.adoption_report(**base, eligible=50, from_directory=True, shared_this_week=5, shared_this_month=20)
    assert (r["eligible"], r["eligible_source"], r["active_rate"]) == (50, "directory", 3 / 50)
    assert r["this_week"] == {"from": "2026-03-22", "sharers": 5, "share_rate": 0.1}
    assert r["this_month"] == {"from": "2026-03-01", "sharers": 20, "share_rate": 0.4}
    # no directory: the enrolled, as before
    r = adoption.adoption_report(**base, shared_this_week=1)
    assert (r["eligible"], r["eligible_source"], r["active_rate"]) == (4, "enrolled", 3 / 4)
    assert r["this_week"]["share_rate"] == 1 / 4
    # an empty directory: no rate rather than a division by zero
    r = adoption.adoption_report(**base, eligible=0, from_directory=True)
    assert r["active_rate"] is None and r["this_month"]["share_rate"] is None


def test_split_months_takes_whole_months_and_leaves_the_edges() -> None:
    from advocacy_metrics.adapters.queries import split_months

    def r(a: str, b: str) -> ranges.DayRange:
        return ranges.DayRange(date.fromisoformat(a), date.fromisoformat(b))

    assert split_months(r("2025-01-01", "2025-12-31")) == ([], (date(2025, 1, 1), date(2025, 12, 1)))
    assert split_months(r("2026-02-20", "2026-04-10")) == (
        [r("2026-02-20", "2026-02-28"), r("2026-04-01", "2026-04-10")],
        (date(2026, 3, 1), date(2026, 3, 1)),
    )
    assert split_months(r("2026-03-02", "2026-03-31")) == ([r("2026-03-02", "2026-03-31")], None)
    assert split_months(r("2024-02-01", "2024-02-29")) == ([], (date(2024, 2, 1), date(2024, 2, 1)))
    assert split_months(r("2026-12-15", "2027-01-31")) == (
        [r("2026-12-15", "2026-12-31")],
        (date(2027, 1, 1), date(2027, 1, 1)),
    )


@given(st.dates(date(2020, 1, 1), date(2030, 1, 1)), st.integers(0, 800))
def test_split_months_covers_every_day_once(start: date, days: int) -> None:
    from datetime import timedelta

    from advocacy_metrics.adapters.queries import split_months

    rng = ranges.DayRange(start, start + timedelta(days=days))
    edges, months = split_months(rng)
    covered = [e.start + timedelta(days=i) for e in edges for i in range(e.days)]
    if months is not None:
        d = months[0]
        while d <= months[1]:
            nxt = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
            covered += [d + timedelta(days=i) for i in range((nxt - d).days)]
            d = nxt
    assert sorted(covered) == [rng.start + timedelta(days=i) for i in range(rng.days)]
