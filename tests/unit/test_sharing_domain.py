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
