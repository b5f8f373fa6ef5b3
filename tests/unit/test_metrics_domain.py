from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from advocacy_metrics import domain

T0 = datetime(2026, 3, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def click(i: int, verdict: str = "counted", at: datetime = T0, invalidated: bool = False) -> domain.Click:
    return domain.Click("t", f"k{i}", "a", "c", "x", "sales", at, verdict, domain.Dims("DE", "mobile", ""), invalidated)


clicks = st.builds(
    domain.Click,
    tenant_id=st.just("t"),
    click_id=st.uuids().map(str),
    employee_id=st.sampled_from(["a", "b"]),
    content_id=st.sampled_from(["c1", "c2"]),
    network=st.sampled_from(["x", "linkedin"]),
    team=st.sampled_from(["", "sales"]),
    at=st.integers(0, 72).map(lambda h: T0 + timedelta(hours=h)),
    verdict=st.sampled_from(["counted", "bot", "duplicate", "self", "rate_limited"]),
    dims=st.builds(domain.Dims, country=st.sampled_from(["", "DE"])),
    invalidated=st.booleans(),
)


@given(st.lists(clicks, max_size=50))
def test_click_deltas_sum_to_the_events(events: list[domain.Click]) -> None:
    d = domain.deltas_from_facts({"t": UTC_ZONE}, clicks=events)
    assert sum(sum(v) for v in d.stats.values()) == len(events)
    for v in domain.VERDICTS:
        want = sum(1 for e in events if e.effective_verdict == v)
        assert sum(row[domain.STAT_SLOT[v]] for row in d.stats.values()) == want
        # each click lands once in every dimension
        for dim in domain.DIMENSIONS:
            assert sum(r[domain.DIM_SLOT[v]] for k, r in d.dim_clicks.items() if k[2] == dim) == want


@given(st.lists(clicks, max_size=30))
def test_roll_ups_carry_the_same_totals(events: list[domain.Click]) -> None:
    d = domain.deltas_from_facts({"t": UTC_ZONE}, clicks=events)
    fine = sum(sum(v) for v in d.stats.values())
    for columns in (("team", "network"), ("content_id", "network"), ("network",), ("employee_id", "network")):
        for monthly in (False, True):
            projected = domain.project_stats(d.stats, columns, monthly)
            assert sum(sum(v) for v in projected.values()) == fine
            assert all(k[1].day == 1 for k in projected) or not monthly


def test_share_adds_reach_on_its_local_day() -> None:
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # already 2 March in Berlin
    s = domain.Share("t", "s", "a", "c", "x", "", late, 500)
    d = domain.Deltas()
    d.add_share(s, BERLIN)
    key = ("t", date(2026, 3, 2), "a", "c", "x", "")
    assert list(d.stats) == [key]
    assert d.stat(key) == {"shares": 1, "reach": 500}
    assert d.sharer_days == {("t", "a", date(2026, 3, 2))}


def test_invalidation_moves_a_counted_click_in_its_own_day() -> None:
    c = click(1, at=T0 - timedelta(days=10))
    live = domain.Deltas()
    live.add_click(c, UTC_ZONE)
    live.invalidate(c, UTC_ZONE)
    final = domain.deltas_from_facts({"t": UTC_ZONE}, clicks=[click(1, at=T0 - timedelta(days=10), invalidated=True)])
    key = ("t", (T0 - timedelta(days=10)).date(), "a", "c", "x", "sales")
    assert live.stat(key) == {"clicks_invalidated": 1}
    assert final.stat(key) == {"clicks_invalidated": 1}


def test_invalidating_a_bot_click_changes_nothing() -> None:
    d = domain.Deltas()
    d.invalidate(click(1, verdict="bot"), UTC_ZONE)
    assert not d
    assert click(1, verdict="bot", invalidated=True).effective_verdict == "bot"


def test_conversion_counts_by_kind_and_currency_and_dims_only_with_its_click() -> None:
    v = domain.Conversion("t", "v1", "k1", "a", "c", "x", "", T0, "sale", Decimal("12.50"), "EUR")
    d = domain.Deltas()
    d.add_conversion(v, UTC_ZONE, None)
    key = ("t", T0.date(), "a", "c", "x", "", "sale", "EUR")
    assert d.conversions[key] == domain.Sum(1, Decimal("12.50"))
    assert not d.dim_conversions
    d.add_conversion_dims(v, UTC_ZONE, domain.Dims("DE", "", "news.example"))
    assert d.dim_conversions[("t", T0.date(), "country", "DE", "sale", "EUR")] == domain.Sum(1, Decimal("12.50"))
    assert d.dim_conversions[("t", T0.date(), "referrer", "news.example", "sale", "EUR")].count == 1


@given(st.lists(clicks, max_size=30), st.integers(0, 30))
def test_deltas_added_together_equal_the_facts_added_to_one(events: list[domain.Click], cut: int) -> None:
    """The consumer computes a batch's click deltas apart (while the clicks land) and adds them to the
    batch's other deltas: the same as adding every fact to one."""
    s = domain.Share("t", "s", "a", "c1", "x", "sales", T0, 500)
    v = domain.Conversion("t", "v1", "k1", "a", "c1", "x", "sales", T0, "sale", Decimal("2.5"), "EUR")
    dims = domain.Dims("DE", "mobile", "")
    one = domain.deltas_from_facts({"t": UTC_ZONE}, shares=[s], clicks=events, conversions=[(v, dims)])
    first = domain.deltas_from_facts({"t": UTC_ZONE}, clicks=events[:cut])
    first.add(domain.deltas_from_facts({"t": UTC_ZONE}, shares=[s], clicks=events[cut:], conversions=[(v, dims)]))
    assert (first.stats, first.dim_clicks, first.conversions, first.dim_conversions, first.sharer_days) == (
        one.stats,
        one.dim_clicks,
        one.conversions,
        one.dim_conversions,
        one.sharer_days,
    )


def test_negated_facts_cancel_out() -> None:
    s = domain.Share("t", "s", "a", "c", "x", "", T0, 500)
    cs = [click(i, verdict=v) for i, v in enumerate(["counted", "bot", "self"])]
    plus = domain.deltas_from_facts({"t": UTC_ZONE}, shares=[s], clicks=cs)
    minus = domain.deltas_from_facts({"t": UTC_ZONE}, shares=[s], clicks=cs, sign=-1)
    for k, row in plus.stats.items():
        assert [a + b for a, b in zip(row, minus.stats[k], strict=True)] == [0] * len(row)


def test_week_start_follows_the_tenant_setting() -> None:
    wed = date(2026, 3, 4)
    assert domain.week_start(wed, 0) == date(2026, 3, 2)  # Monday
    assert domain.week_start(wed, 6) == date(2026, 3, 1)  # Sunday
    assert domain.week_start(date(2026, 3, 2), 0) == date(2026, 3, 2)


def test_lapse_after_thirty_days_without_a_share() -> None:
    d = date(2026, 1, 1)
    assert domain.lapse_days([d]) == [d + timedelta(days=30)]
    # a share on day 30 keeps the sharer active: one lapse, after the last share
    assert domain.lapse_days([d, d + timedelta(days=30)]) == [d + timedelta(days=60)]
    # 31 days apart: lapsed in between
    assert domain.lapse_days([d, d + timedelta(days=31)]) == [d + timedelta(days=30), d + timedelta(days=61)]


@given(st.sets(st.integers(0, 200), min_size=1, max_size=20))
def test_lapse_days_match_day_by_day_activity(offsets: set[int]) -> None:
    start = date(2026, 1, 1)
    days = {start + timedelta(days=o) for o in offsets}

    def active(t: date) -> bool:
        return any(t - timedelta(days=29) <= d <= t for d in days)

    brute = [
        start + timedelta(days=i)
        for i in range(1, 260)
        if active(start + timedelta(days=i - 1)) and not active(start + timedelta(days=i))
    ]
    assert domain.lapse_days(days) == brute
