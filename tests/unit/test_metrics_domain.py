from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.events.sharing import ShareClicked, ShareCreated, Verdict
from advocacy_metrics import domain

T0 = datetime(2026, 3, 1, tzinfo=UTC)

clicks = st.builds(
    ShareClicked,
    click_id=st.uuids().map(str),
    share_id=st.just("s"),
    code=st.just("c"),
    content_id=st.sampled_from(["c1", "c2"]),
    employee_id=st.sampled_from(["a", "b"]),
    network=st.sampled_from(["x", "linkedin"]),
    clicked_at=st.integers(0, 72).map(lambda h: T0 + timedelta(hours=h)),
    verdict=st.sampled_from(list(Verdict)),
    team=st.sampled_from([None, "sales"]),
)


@given(st.lists(clicks, max_size=50))
def test_click_deltas_sum_to_the_events(events: list[ShareClicked]) -> None:
    out = domain.deltas(domain.Fact("t", e) for e in events)
    total = sum(sum(v.values()) for v in out.values())
    assert total == len(events)
    for v in Verdict:
        assert sum(row.get(f"clicks_{v.value}", 0) for row in out.values()) == sum(1 for e in events if e.verdict is v)


def test_share_adds_reach_on_its_day() -> None:
    e = ShareCreated(
        share_id="s", employee_id="a", content_id="c", network="x", code="k", created_at=T0, audience_size=500
    )
    out = domain.deltas([domain.Fact("t", e)])
    assert out == {("t", T0.date(), "a", "c", "x", ""): {"shares": 1, "reach": 500}}
