"""The click verdict on labelled corpora from five publishers (tests/support/uacorpora.py), the verdict
function over strings, no HTTP. On every gated corpus, held out or not: at most 5 % of bots counted,
at least 99 % of browsers counted. ``python -m bench verdicts`` prints the full table, per reason."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from advocacy_sharing.adapters import verdicts
from tests.support import uacorpora

# Every gated corpus but Matomo's tuning half (15,000 agents: the bench measures it; here it would
# double the test's time and prove nothing the tuning corpora do not).
GATED = [name for name, spec in uacorpora.CORPORA.items() if spec[3] and name != "matomo-browsers-dev"]


@pytest.mark.parametrize("name", GATED)
def test_gate_on_corpus(name: str) -> None:
    corpus = uacorpora.load(name)
    assert len(corpus.agents) >= 20, f"{name}: the corpus did not load"
    m = uacorpora.measure(corpus, verdicts.ua_reason)
    wrong = "counted" if corpus.label == uacorpora.BOTS else "not counted"
    assert m.passes, (
        f"{name} ({'held out' if corpus.held_out else 'tuning'}): {m.counted_rate:.2%} counted of {m.total} "
        f"{corpus.label}; reasons {m.by_reason}; {wrong}, e.g. {m.examples[:5]}"
    )


def test_held_out_corpora_are_named_and_from_three_publishers() -> None:
    held_out = {name for name, spec in uacorpora.CORPORA.items() if spec[2] and spec[3]}
    assert {"matomo-bots", "matomo-browsers", "top-user-agents"} <= held_out
    publishers = {spec[0].split(" (")[0] for spec in uacorpora.CORPORA.values()}
    assert len(publishers - {"hand-written"}) >= 3


@pytest.mark.parametrize("app", ["LinkedInApp", "FBAN", "FB_IAB", "Instagram", "TwitterAndroid", "Slack/", "Teams"])
def test_in_app_webviews_of_the_networks_count(app: str) -> None:
    agents = [ua for ua in uacorpora.webviews() if app in ua]
    assert agents, f"no {app} webview in tests/fixtures/useragents/webviews.txt"
    assert {ua: verdicts.ua_reason(ua) for ua in agents} == dict.fromkeys(agents)


# The strings issue 21 found counted: each now a bot, with a reason.
ISSUE_21_MISSES = [
    "Spotify/1.0",
    "RSSRadio (Push Notification Scanner;support@dorada.co.uk)",
    "iTMS",
    "Arachni/v1.5.1",
    "Mozilla/5.0 (Exchange check)",
    "Amazon Route 53 Health Check Service; ref:xxxxxxxx-xxxx; report http://amzn.to/xxxxxxx",
    "collectd/5.5.1",
    "munin/http_loadtime",
    "Mozilla/5.0 (en-US) AppleWebKit/537.36 (KHTML, like Gecko; Google-Assess) Chrome/34.0.1847.116 Safari/537.36",
    "Cohere-Command",
    "GitHubCopilotChat/0.22.4",
    "NovaAct",
]


@pytest.mark.parametrize("ua", ISSUE_21_MISSES)
def test_what_issue_21_found_counted_is_a_bot(ua: str) -> None:
    assert verdicts.ua_reason(ua) is not None


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        ("", "ua_not_browser"),
        ("   ", "ua_not_browser"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0", "ua_not_browser"),  # Chrome without its engine
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "ua_not_browser"),  # Firefox without Gecko
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko; Foo) Chrome/131.0.0.0 "
            "Safari/537.36",
            "ua_not_browser",
        ),
        ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "preview_fetcher"),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "known_crawler:crawler-user-agents"),
        ("Mozilla/5.0 (Exchange check)", "known_crawler:isbot"),
        # a device named like a bot is a phone (the Android platform comment is not read by the databases)
        (
            "Mozilla/5.0 (Linux; Android 7.0; M bot 60 Build/NRD90M) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/58.0.3029.83 Mobile Safari/537.36",
            None,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
            "Safari/537.36",
            None,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.4 Mobile/15E148 Safari/605.1.15 (Ecosia ios@11.0.2.2268)",
            None,
        ),
    ],
)
def test_named_reasons(ua: str, reason: str | None) -> None:
    assert verdicts.ua_reason(ua) == reason


def test_every_rule_has_a_named_reason() -> None:
    for reason in verdicts.UA_RULES:
        assert reason in {"preview_fetcher", "ua_not_browser"} or reason.startswith("known_crawler:")


def test_shipped_isbot_pattern_is_the_pinned_packages() -> None:
    """data/isbot.json is what ``python -m advocacy_dev.botlists`` made from the npm package pinned in
    tests/corpora/package.json (a refreshed package without a refreshed data file fails here)."""
    node = shutil.which("node")
    pkg = uacorpora.NODE_MODULES / "isbot"
    assert node and pkg.exists(), "needs node and `make install` (tests/corpora/node_modules)"
    shipped = json.loads(verdicts.ISBOT_DATA_PATH.read_text())
    version = json.loads((pkg / "package.json").read_text())["version"]
    pattern = subprocess.run(
        [node, "-e", "process.stdout.write(require(process.argv[1]).getPattern().source)", str(pkg)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert (shipped["version"], shipped["pattern"]) == (version, pattern)
