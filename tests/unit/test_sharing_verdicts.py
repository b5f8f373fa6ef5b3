"""Bot detection against corpora of real user agents (tests/fixtures/useragents)."""

from pathlib import Path

import pytest

from advocacy_sharing.adapters import verdicts

CORPORA = Path(__file__).parents[1] / "fixtures" / "useragents"


def corpus(name: str) -> list[str]:
    return [line for line in (CORPORA / name).read_text().splitlines() if line.strip()]


# Examples of crawler-user-agents that are a person's browser: its ``AP3A.240617.008`` pattern (for
# 80legs) is an Android 15 build id that millions of phones send, here in Instagram's in-app browser.
NOT_CRAWLERS = {
    "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram 406.0.0.58.159 Android (35/15; 480dpi; "
    "1080x2400; OPPO; CPH2557; OP573DL1; mt6833; en_MY; 822918295; IABMV/1) NV/1"
}


def test_every_real_crawler_and_preview_fetcher_is_a_bot() -> None:
    uas = corpus("crawlers.txt") + corpus("previews.txt")
    assert len(uas) > 2000
    missed = [ua for ua in uas if not verdicts.is_bot(ua)]
    assert set(missed) <= NOT_CRAWLERS


def test_real_browsers_are_people() -> None:
    uas = corpus("browsers.txt")
    assert len(uas) > 800
    flagged = [ua for ua in uas if verdicts.is_bot(ua)]
    assert len(flagged) / len(uas) <= 0.01, flagged[:10]


@pytest.mark.parametrize(
    ("ua", "device", "browser", "os"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.6 Mobile/15E148 Safari/604.1",
            "mobile",
            "Mobile Safari",
            "iOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Safari/537.36",
            "desktop",
            "Chrome",
            "Windows",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
            "Mobile/15E148 Safari/604.1",
            "tablet",
            "Mobile Safari",
            "iOS",
        ),
    ],
)
def test_device_browser_os(ua: str, device: str, browser: str, os: str) -> None:
    d = verdicts.device_of(ua)
    assert (d.device, d.browser, d.os) == (device, browser, os)


def test_referrer_domain_and_country() -> None:
    assert verdicts.referrer_domain("https://www.LinkedIn.com/feed/?x=1") == "linkedin.com"
    assert verdicts.referrer_domain("not a url") is None
    assert verdicts.referrer_domain(None) is None
    assert verdicts.country_code(" de ") == "DE"
    assert verdicts.country_code("XX") is None
    assert verdicts.country_code("<script>") is None
