"""Issue 19 (ADR 0019): ``points.awarded.v2`` sums one batch's entries per person, and
``points.awarded.v1`` is published only for the tenants still listed for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from advocacy_common.events import new_event
from advocacy_common.events.gamification import PointsAwardedV2
from advocacy_common.partner_feed import partner_payload
from advocacy_gamification.adapters.ledger import NewEntry, Posted, V1Tenants, tallies

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def entry(tenant: str, who: str, n: int, points: int, *, kind: str = "award", action: str = "click") -> NewEntry:
    return NewEntry(
        tenant_id=tenant,
        employee_id=who,
        event_id=f"ev{n}",
        rule_version=1,
        entry_type=kind,
        action=action,
        points=points,
        balance_delta=points,
        occurred_at=T0 + timedelta(minutes=n),
        capped=points == 0,
    )


def test_one_event_per_person_summing_their_entries() -> None:
    posted = [
        Posted(10, entry("a", "ann", 1, 5)),
        Posted(11, entry("a", "bob", 2, 3, action="share")),
        Posted(12, entry("a", "ann", 3, 0)),
        Posted(13, entry("a", "ann", 4, -5, kind="reversal")),
        Posted(14, entry("b", "ann", 5, 7)),  # another tenant's ann
        Posted(15, entry("a", "ann", 6, 2, kind="spend")),  # not an award: never published
    ]
    out = tallies(posted)
    assert [(t, d.employee_id) for t, d in out] == [("a", "ann"), ("a", "bob"), ("b", "ann")]
    ann = out[0][1]
    assert (ann.points, ann.entry_count, ann.first_entry_id, ann.last_entry_id) == (0, 3, "10", "13")
    assert (ann.first_occurred_at, ann.last_occurred_at) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    lines = [(x.action, x.kind, x.entries, x.points, x.capped) for x in ann.by_action]
    assert lines == [("click", "award", 2, 5, 1), ("click", "reversal", 1, -5, 0)]
    assert out[2][1].points == 7


@given(
    st.lists(
        st.tuples(st.sampled_from(["ann", "bob", "cy"]), st.integers(-20, 20), st.sampled_from(["award", "reversal"])),
        max_size=60,
    )
)
def test_the_events_add_up_to_the_entries(rows: list[tuple[str, int, str]]) -> None:
    posted = [Posted(i + 1, entry("t", who, i, pts, kind=kind)) for i, (who, pts, kind) in enumerate(rows)]
    out = tallies(posted)
    assert len(out) == len({who for who, _, _ in rows})
    for _, d in out:
        mine = [pts for who, pts, _ in rows if who == d.employee_id]
        assert d.points == sum(mine) == sum(x.points for x in d.by_action)
        assert d.entry_count == len(mine) == sum(x.entries for x in d.by_action)
        # a valid event: it survives its own JSON round trip
        assert PointsAwardedV2.model_validate_json(d.model_dump_json()) == d


def test_v1_tenants() -> None:
    v1 = V1Tenants()
    assert "acme" not in v1  # the default: v2 only
    v1.configure(" acme, globex ,,")
    assert "acme" in v1 and "globex" in v1 and "initech" not in v1
    v1.configure("*")
    assert "initech" in v1
    v1.configure("")
    assert "acme" not in v1


def test_partners_get_the_sums_and_the_lines() -> None:
    """The partner feed keeps ids, times and what PARTNER_FIELDS names: v2's counts must be there."""
    posted = [Posted(10, entry("a", "ann", 1, 5)), Posted(11, entry("a", "ann", 2, 0))]
    (_, data) = tallies(posted)[0]
    view = partner_payload(new_event("/advocacy/gamification", "a", data))
    assert view is not None
    assert view["employee_id"] == "ann" and view["points"] == 5 and view["entry_count"] == 2
    assert view["by_action"] == [{"action": "click", "kind": "award", "entries": 2, "points": 5, "capped": 1}]
