from datetime import date
from urllib.parse import parse_qs, urlsplit

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
