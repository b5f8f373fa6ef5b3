from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advocacy_sharing import domain


def test_codes_are_long_base62_and_distinct() -> None:
    codes = {domain.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) >= 8 and domain.is_code_shaped(c) for c in codes)


def test_destination_keeps_own_query_and_adds_utm() -> None:
    dest = domain.destination("https://ex.com/a?b=1&utm_source=old#frag", network="x", campaign="big-news")
    parts = urlsplit(dest)
    q = parse_qs(parts.query)
    assert parts.netloc == "ex.com" and parts.fragment == "frag"
    assert q == {
        "b": ["1"],
        "utm_source": ["x"],
        "utm_medium": ["employee_advocacy"],
        "utm_campaign": ["big-news"],
    }
    assert parse_qs(urlsplit(domain.with_click_id(dest, "abc")).query)["adv_click"] == ["abc"]


@given(st.text(max_size=40), st.text(max_size=40))
def test_visitor_hash_rotates_daily_and_hides_ip(ip: str, ua: str) -> None:
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    h1 = domain.visitor_hash("s", d1, ip, ua)
    assert h1 == domain.visitor_hash("s", d1, ip, ua)
    assert h1 != domain.visitor_hash("s", d2, ip, ua)
    assert ip not in h1 or len(ip) < 2


# -- verdicts, windows, authenticity ------------------------------------------------------------------
from datetime import UTC, datetime, timedelta  # noqa: E402

from advocacy_common.events.sharing import Verdict  # noqa: E402

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@given(st.booleans(), st.sampled_from([None, Verdict.bot, Verdict.rate_limited]), st.booleans(), st.booleans())
def test_verdict_precedence_bot_rate_limited_self_duplicate(
    bot: bool, edge: Verdict | None, me: bool, dup: bool
) -> None:
    v = domain.decide_verdict(domain.ClickFacts(is_bot=bot, edge_verdict=edge, is_self=me, is_duplicate=dup))
    if bot or edge is Verdict.bot:
        assert v is Verdict.bot
    elif edge is Verdict.rate_limited:
        assert v is Verdict.rate_limited
    elif me:
        assert v is Verdict.self
    elif dup:
        assert v is Verdict.duplicate
    else:
        assert v is Verdict.counted


def test_duplicate_within_24h_either_side_not_after() -> None:
    assert domain.is_duplicate([T0], T0 + timedelta(hours=23, minutes=59))
    assert domain.is_duplicate([T0 + timedelta(hours=1)], T0)  # a late replay of an earlier click
    assert not domain.is_duplicate([T0], T0 + timedelta(hours=25))
    assert not domain.is_duplicate([], T0)


def test_self_click_matches_today_or_yesterday_key_within_24h() -> None:
    kw = {"creator_visitor": "me", "share_created_at": T0}
    assert domain.is_self_click(**kw, visitor="me", visitor_prev="x", at=T0 + timedelta(hours=1))
    assert domain.is_self_click(**kw, visitor="new-day-key", visitor_prev="me", at=T0 + timedelta(hours=13))
    assert not domain.is_self_click(**kw, visitor="me", visitor_prev=None, at=T0 + timedelta(hours=25))
    assert not domain.is_self_click(**kw, visitor="other", visitor_prev="other-y", at=T0 + timedelta(hours=1))
    assert not domain.is_self_click(creator_visitor=None, share_created_at=T0, visitor="me", visitor_prev=None, at=T0)


def test_visitor_keys_match_visitor_hash_and_rotate() -> None:
    keys = domain.VisitorKeys("s")
    day = (date(2026, 1, 2) - date(1970, 1, 1)).days
    today, yesterday = keys.keys(day)
    assert domain.visitor_hash_with_key(today, "1.2.3.4", "ua") == domain.visitor_hash(
        "s", date(2026, 1, 2), "1.2.3.4", "ua"
    )
    assert domain.visitor_hash_with_key(yesterday, "1.2.3.4", "ua") == domain.visitor_hash(
        "s", date(2026, 1, 1), "1.2.3.4", "ua"
    )


def test_click_id_goes_before_the_fragment() -> None:
    assert domain.with_click_id("https://e.com/a?x=1#top", "C") == "https://e.com/a?x=1&adv_click=C#top"
    assert domain.with_click_id("https://e.com/a", "C") == "https://e.com/a?adv_click=C"


def test_destination_drops_a_smuggled_click_id() -> None:
    dest = domain.destination("https://e.com/?adv_click=evil", network="x", campaign="c")
    assert "evil" not in dest


def test_near_identical_messages_are_counted() -> None:
    base = "Proud of our team: the new launch makes onboarding twice as fast! https://acme.com/launch"
    others = [
        base,
        base.upper(),
        "Proud of our team: the new launch makes onboarding twice as fast!!",
        "Proud of our team - the new launch makes onboarding twice as fast https://other.example/x",
        "I tried the new onboarding flow myself last week and it really is quicker; ask me anything.",
    ]
    assert domain.near_identical_count(base, others, 0.85) == 4
    assert domain.similarity(base, others[-1]) < 0.2


# -- mail scanners (issue 21) ----------------------------------------------------------------------------
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("ip", "net"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("2001:db8:1:2::5", "2001:db8:1::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("1.2.3.999", None),
        ("not an address", None),
        ("", None),
    ],
)
def test_network_of(ip: str, net: str | None) -> None:
    assert domain.network_of(ip) == net


def test_a_burst_from_one_network_on_a_new_link_is_a_scanner() -> None:
    # three visitors of one /24 within a second, as the share is made
    at = T0 + 200 * MS
    assert domain.scanner_reason(at, T0, [T0 + 100 * MS, T0 + 900 * MS]) == domain.SCANNER_TIMING


@pytest.mark.parametrize(
    ("at", "others", "why"),
    [
        (T0 + timedelta(minutes=1), [T0 + timedelta(minutes=1, milliseconds=100)] * 2, "a minute after the share"),
        (T0 + domain.SCANNER_WINDOW, [T0 + domain.SCANNER_WINDOW + MS] * 2, "at the end of the window"),
        (T0 + 100 * MS, [T0 + 200 * MS], "two clicks are not a burst"),
        (T0 + 100 * MS, [T0 + 1200 * MS, T0 + 2300 * MS], "more than a second apart"),
        (T0 + 100 * MS, [], "alone on its network"),
        (T0 - 2 * domain.BURST_WINDOW, [T0 - 2 * domain.BURST_WINDOW] * 2, "before the share existed"),
    ],
)
def test_what_is_not_a_scanner(at: datetime, others: list[datetime], why: str) -> None:
    assert domain.scanner_reason(at, T0, others) is None, why


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=5000), min_size=0, max_size=6),
    mine=st.integers(min_value=0, max_value=5000),
)
def test_scanner_rule_matches_its_definition(offsets: list[int], mine: int) -> None:
    """scanner_timing iff fresh and some window of one second holds this click and two others."""
    at = T0 + mine * MS
    others = [T0 + o * MS for o in offsets]
    times = sorted([at, *others])
    expected = domain.is_fresh(at, T0) and any(
        lo <= at <= lo + domain.BURST_WINDOW and sum(lo <= t <= lo + domain.BURST_WINDOW for t in times) >= 3
        for lo in times
    )
    assert (domain.scanner_reason(at, T0, others) == domain.SCANNER_TIMING) == expected


# -- a tenant's allow-list (issue 21) --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ua", "net", "allowed"),
    [
        ("AcmeIntranet/2.1 (Windows)", None, True),  # a substring of the agent, any case
        ("acmeintranet/2.1", "198.51.100.0/24", True),
        ("curl/8.0", "203.0.113.0/24", True),  # its office's /24
        ("curl/8.0", "203.0.112.0/24", False),
        ("curl/8.0", "2001:db8:1::/48", True),  # inside an allowed /32
        ("curl/8.0", "192.0.2.0/24", True),  # an allowed range narrower than the /24
        ("curl/8.0", None, False),
        ("curl/8.0", "garbage", False),
    ],
)
def test_is_allowed(ua: str, net: str | None, allowed: bool) -> None:
    lists = (["AcmeIntranet/"], ["203.0.113.0/24", "2001:db8::/32", "192.0.2.128/28"])
    assert domain.is_allowed(ua, net, *lists) is allowed


def test_allow_list_settings_are_bounded_and_checked() -> None:
    from pydantic import ValidationError

    from advocacy_common.tenant import ClickAllowList

    assert ClickAllowList(networks=["203.0.113.7/24"]).networks == ["203.0.113.0/24"]
    for bad in (
        {"networks": ["not a network"]},
        {"networks": ["10.0.0.0/7"]},  # wider than /8
        {"user_agents": ["ab"]},  # too short: it would match everything
        {"user_agents": ["x" * 201]},
        {"user_agents": [f"agent-{i}" for i in range(51)]},
    ):
        with pytest.raises(ValidationError):
            ClickAllowList.model_validate(bad)


@given(st.one_of(st.none(), st.booleans()))
def test_no_accept_language_fires_only_when_the_header_did_not_come(sent: bool | None) -> None:
    # True: the header came; None: a producer older than the field, not judged; False: a bot
    reason = domain.header_reason(sent)
    assert (reason == domain.NO_ACCEPT_LANGUAGE) is (sent is False)
    assert reason in (None, domain.NO_ACCEPT_LANGUAGE)
