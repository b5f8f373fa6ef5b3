"""Labelled user-agent corpora for the click verdict (issue 21), from five publishers, each pinned:

| corpus | publisher, package | label | role |
| --- | --- | --- | --- |
| ``crawler-user-agents`` | Monperrus et al., PyPI ``crawler-user-agents`` (pyproject) | bots | tuning |
| ``fake-useragent`` | PyPI ``fake-useragent`` (dev extra) | browsers | tuning |
| ``intoli`` | Intoli, npm ``user-agents`` (tests/corpora/package.json) | browsers | tuning |
| ``matomo-bots`` | Matomo, PyPI ``device-detector`` fixtures (dev extra) | bots | held out |
| ``matomo-browsers-dev`` | same: half of the desktop and phone browsers and webviews | browsers | tuning |
| ``matomo-browsers`` | same: the other half (by a hash of the agent) | browsers | held out |
| ``top-user-agents`` | microlink, npm ``top-user-agents`` | browsers | held out |
| ``webviews`` | hand-written, tests/fixtures/useragents/webviews.txt | browsers | held out |

Reported, not gated (see services/sharing/README.md, "How the corpora are labelled"):
``matomo-clients`` (Matomo's ``library``, ``feed reader``, ``mediaplayer``, ``pim`` clients: labelled
bots, none is a person opening a link), ``matomo-apps`` (mobile apps' own HTTP clients, not webviews),
``matomo-other-devices`` (browsers of TVs, consoles, cars, cameras...: not where shared links are read).

Matomo's bots that are exact examples of crawler-user-agents are left out of ``matomo-bots`` (they
are in the tuning set). The npm corpora are installed by ``make install`` into tests/corpora/node_modules.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).parents[1]
NODE_MODULES = ROOT / "corpora" / "node_modules"
FIXTURES = ROOT / "fixtures" / "useragents"

BOTS, BROWSERS = "bots", "browsers"
# Matomo device types where shared links are read: desktops and phones (tablets included).
PERSONAL_DEVICES = frozenset({"desktop", "smartphone", "phablet", "tablet", "feature phone"})
# Matomo client types that are programs fetching by themselves, not a person's browser.
AUTOMATED_CLIENTS = frozenset({"library", "feed reader", "mediaplayer", "pim", "p2p", "av"})


@dataclass(frozen=True)
class Corpus:
    name: str
    publisher: str
    label: str  # BOTS or BROWSERS
    held_out: bool
    gated: bool
    agents: tuple[str, ...]


class MissingCorpus(RuntimeError):
    pass


def _need(path: Path, how: str) -> Path:
    if not path.exists():
        raise MissingCorpus(f"{path} is missing: {how}")
    return path


def _unique(agents: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for ua in agents:
        ua = ua.strip()
        if ua:
            seen.setdefault(ua, None)
    return tuple(seen)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def crawler_user_agents() -> tuple[str, ...]:
    import crawleruseragents  # type: ignore[import-untyped]

    return _unique(ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry.get("instances", []))


def fake_useragent() -> tuple[str, ...]:
    try:
        import fake_useragent as fu
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        raise MissingCorpus("fake-useragent is missing: make install") from e
    path = Path(fu.__file__).parent / "data" / "browsers.jsonl"
    return _unique(json.loads(line)["useragent"] for line in path.read_text().splitlines() if line.strip())


def intoli() -> tuple[str, ...]:
    path = _need(NODE_MODULES / "user-agents" / "dist" / "user-agents.json", "make install (npm corpora)")
    return _unique(row["userAgent"] for row in json.loads(path.read_text()))


def top_user_agents() -> tuple[str, ...]:
    src = NODE_MODULES / "top-user-agents" / "src"
    _need(src, "make install (npm corpora)")
    return _unique([*json.loads((src / "desktop.json").read_text()), *json.loads((src / "mobile.json").read_text())])


def webviews() -> tuple[str, ...]:
    return _unique(_lines(FIXTURES / "webviews.txt"))


@cache
def _matomo() -> tuple[list[str], list[tuple[str, str | None, str | None]]]:
    """(bot agents, [(agent, client type, device type)] of the other fixtures)."""
    import yaml

    try:
        import device_detector  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        raise MissingCorpus("device-detector is missing: make install") from e
    root = Path(device_detector.__file__).parent / "tests" / "fixtures" / "upstream"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    bots: list[str] = []
    others: list[tuple[str, str | None, str | None]] = []
    for path in sorted(glob.glob(str(root / "*.yml"))):
        with open(path, encoding="utf-8") as f:
            entries = yaml.load(f, Loader=loader) or []  # the safe loader (C when built)
        if os.path.basename(path) == "bots.yml":
            bots.extend(str(entry["user_agent"]) for entry in entries)
            continue
        for entry in entries:
            client = entry.get("client") or {}
            device = entry.get("device") or {}
            others.append((str(entry["user_agent"]), client.get("type"), device.get("type")))
    return bots, others


def matomo_bots() -> tuple[str, ...]:
    tuned = set(crawler_user_agents())
    return _unique(ua for ua in _matomo()[0] if ua not in tuned)


def _matomo_browsers() -> tuple[str, ...]:
    """Desktop and phone browsers, and mobile apps that are webviews (a browser engine inside the app:
    their agent is a browser's, ``Mozilla/5.0 (...``, with the app's tokens)."""
    return _unique(
        ua
        for ua, client, device in _matomo()[1]
        if not _http_library(ua)
        and ((client == "browser" and device in PERSONAL_DEVICES) or (client == "mobile app" and _webview_shaped(ua)))
    )


def _half(ua: str) -> int:
    return hashlib.blake2b(ua.encode(), digest_size=1).digest()[0] & 1


def matomo_browsers() -> tuple[str, ...]:
    """The held-out half of Matomo's browsers (by a hash of the agent): never looked at to tune."""
    return tuple(ua for ua in _matomo_browsers() if _half(ua) == 1)


def matomo_browsers_dev() -> tuple[str, ...]:
    """The other half: its misjudged agents may be read and the rules tuned on them."""
    return tuple(ua for ua in _matomo_browsers() if _half(ua) == 0)


def matomo_clients() -> tuple[str, ...]:
    return _unique(ua for ua, client, _ in _matomo()[1] if client in AUTOMATED_CLIENTS)


def matomo_apps() -> tuple[str, ...]:
    return _unique(
        ua
        for ua, client, _ in _matomo()[1]
        if (client == "mobile app" and not _webview_shaped(ua)) or (client == "browser" and _http_library(ua))
    )


def matomo_other_devices() -> tuple[str, ...]:
    return _unique(
        ua
        for ua, client, device in _matomo()[1]
        if client == "browser" and device not in PERSONAL_DEVICES and not _http_library(ua)
    )


def _webview_shaped(ua: str) -> bool:
    return ua.startswith("Mozilla/5.0 (")


def _http_library(ua: str) -> bool:
    """Matomo labels these ``browser``; they are the operating systems' HTTP clients an app fetches
    with: ``Dalvik/2.1.0 (Linux; U; Android ...)`` is the default agent of Android's HttpURLConnection,
    ``... CFNetwork/... Darwin/...`` the agent of Apple's URL loading system. A page a person opens in
    a browser or a webview carries the browser's agent instead. Relabelled (before measuring the
    held-out half) as apps' own requests: reported with ``matomo-apps``."""
    return ua.startswith("Dalvik/") or ("CFNetwork/" in ua and "Darwin/" in ua)


CORPORA: dict[str, tuple[str, str, bool, bool, Callable[[], tuple[str, ...]]]] = {
    # name: (publisher, label, held out, gated, loader)
    "crawler-user-agents": ("Monperrus et al. (PyPI)", BOTS, False, True, crawler_user_agents),
    "fake-useragent": ("fake-useragent (PyPI)", BROWSERS, False, True, fake_useragent),
    "intoli": ("Intoli (npm user-agents)", BROWSERS, False, True, intoli),
    "matomo-browsers-dev": ("Matomo (PyPI device-detector)", BROWSERS, False, True, matomo_browsers_dev),
    "matomo-bots": ("Matomo (PyPI device-detector)", BOTS, True, True, matomo_bots),
    "matomo-browsers": ("Matomo (PyPI device-detector)", BROWSERS, True, True, matomo_browsers),
    "top-user-agents": ("microlink (npm)", BROWSERS, True, True, top_user_agents),
    "webviews": ("hand-written (tests/fixtures)", BROWSERS, True, True, webviews),
    "matomo-clients": ("Matomo (PyPI device-detector)", BOTS, True, False, matomo_clients),
    "matomo-apps": ("Matomo (PyPI device-detector)", BROWSERS, True, False, matomo_apps),
    "matomo-other-devices": ("Matomo (PyPI device-detector)", BROWSERS, True, False, matomo_other_devices),
}


def load(name: str) -> Corpus:
    publisher, label, held_out, gated, loader = CORPORA[name]
    return Corpus(name, publisher, label, held_out, gated, loader())


# -- measuring -------------------------------------------------------------------------------------------
MAX_BOTS_COUNTED = 0.05
MIN_BROWSERS_COUNTED = 0.99


@dataclass
class Measure:
    corpus: Corpus
    counted: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # the reason each bot verdict got
    alone: dict[str, int] = field(default_factory=dict)  # how many each rule flags on its own
    examples: list[str] = field(default_factory=list)  # a few misjudged agents

    @property
    def total(self) -> int:
        return len(self.corpus.agents)

    @property
    def counted_rate(self) -> float:
        return self.counted / self.total if self.total else 0.0

    @property
    def passes(self) -> bool:
        if self.corpus.label == BOTS:
            return self.counted_rate <= MAX_BOTS_COUNTED
        return self.counted_rate >= MIN_BROWSERS_COUNTED


def measure(
    corpus: Corpus,
    reason_of: Callable[[str], str | None],
    rules: dict[str, Callable[[str], bool]] | None = None,
) -> Measure:
    """Judge every agent with ``reason_of`` (the verdict); with ``rules``, also count what each rule
    flags on its own (the bench does; the test checks the gate only, in a fraction of the time)."""
    rules = rules or {}
    m = Measure(corpus, alone=dict.fromkeys(rules, 0))
    for ua in corpus.agents:
        reason = reason_of(ua)
        if reason is None:
            m.counted += 1
        else:
            m.by_reason[reason] = m.by_reason.get(reason, 0) + 1
        if (reason is None) == (corpus.label == BOTS) and len(m.examples) < 10:
            m.examples.append(ua)
        for name, applies in rules.items():
            if applies(ua):
                m.alone[name] += 1
    return m


def table(measures: list[Measure]) -> str:
    """A Markdown table: per corpus, counted rate, pass/fail, and per reason (as given; on its own)."""
    reasons = list(measures[0].alone) if measures else []
    if not reasons:
        reasons = sorted({r for m in measures for r in m.by_reason})
    head = ["corpus", "publisher", "label", "role", "n", "counted", "gate", *reasons]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in measures:
        c = m.corpus
        role = ("held out" if c.held_out else "tuning") + ("" if c.gated else ", reported")
        gate = ("pass" if m.passes else "FAIL") if c.gated else "-"
        cells = [c.name, c.publisher, c.label, role, str(m.total), f"{m.counted_rate:.2%}", gate]
        cells += [f"{m.by_reason.get(r, 0)} / {m.alone[r]}" if m.alone else str(m.by_reason.get(r, 0)) for r in reasons]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
