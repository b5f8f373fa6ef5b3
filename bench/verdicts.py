"""The click verdict on labelled corpora (issue 21): ``python -m bench verdicts``.

Per corpus (tests/support/uacorpora.py): how many agents, the share counted, pass/fail of the gate
(at most 5 % of bots counted, at least 99 % of browsers), and per reason two numbers: the verdicts
that got that reason (the first rule that applies names it) / the agents the rule flags on its own.
Then the cost of one uncached verdict per rule, on the browsers (where every rule runs).

The network rule (``datacenter_range``, adapters/ranges.py) reads no user agent, so it flags none of
the user-agent corpora; it is measured on address plans instead: the share of each plan's /24s the
shipped table flags, and the cost of one lookup.
"""

from __future__ import annotations

import ipaddress
import random
import time
import tracemalloc

from advocacy_sharing.adapters import ranges, verdicts
from bench.common import append_results
from bench.redirect import PEOPLE_OCTETS, visitor_address
from tests.support import uacorpora

SAMPLE = 200_000  # /24s per address plan, drawn at random (seeded)


def run() -> tuple[list[uacorpora.Measure], dict[str, float]]:
    measures = []
    for name in uacorpora.CORPORA:
        corpus = uacorpora.load(name)
        measures.append(uacorpora.measure(corpus, verdicts.ua_reason.__wrapped__, verdicts.UA_RULES))
        print(f"  {name}: {len(corpus.agents)} agents", flush=True)
    browsers = uacorpora.load("intoli").agents
    cost: dict[str, float] = {}
    for reason, applies in verdicts.UA_RULES.items():
        began = time.perf_counter()
        for ua in browsers:
            applies(ua)
        cost[reason] = (time.perf_counter() - began) / len(browsers) * 1e6
    began = time.perf_counter()
    for ua in browsers:
        verdicts.ua_reason.__wrapped__(ua)
    cost["whole verdict (uncached)"] = (time.perf_counter() - began) / len(browsers) * 1e6
    return measures, cost


def _share(table: ranges.NetworkRanges, networks: list[str]) -> str:
    flagged = sum(table.covers(n) for n in networks)
    return f"{flagged:,} of {len(networks):,} ({flagged / len(networks):.2%})"


def networks() -> list[str]:
    """The network rule on address plans, and what a lookup costs."""
    began = time.perf_counter()
    table = ranges.parse(ranges.DATA_PATH.read_text())
    load_s = time.perf_counter() - began
    tracemalloc.start()
    ranges.parse(ranges.DATA_PATH.read_text())
    load_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    rng = random.Random(21)
    people = [
        f"{visitor_address(v).rpartition('.')[0]}.0/24" for v in rng.sample(range(len(PEOPLE_OCTETS) << 16), SAMPLE)
    ]
    old_plan = [f"{11 + (v >> 16) % 64}.{(v >> 8) & 255}.{v & 255}.0/24" for v in rng.sample(range(64 << 16), SAMPLE)]
    public: list[str] = []
    while len(public) < SAMPLE:
        net = ipaddress.IPv4Network((rng.getrandbits(24) << 8, 24))
        if net.is_global and int(net.network_address) < 224 << 24:
            public.append(str(net))
    v6 = [f"2{rng.getrandbits(15):04x}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::/48" for _ in range(SAMPLE)]
    cost = {}
    for name, nets in (("IPv4 /24", public), ("IPv6 /48", v6)):
        began = time.perf_counter()
        for n in nets:
            table.covers(n)
        cost[name] = (time.perf_counter() - began) / len(nets) * 1e6
    head = [h for h in table.header if h.startswith(("source:", "refreshed:"))]
    return [
        f"`datacenter_range` (adapters/data/datacenter_ranges.txt: {'; '.join(head)}; "
        f"{len(table):,} merged intervals). It reads no user agent: 0 agents of every corpus above. "
        "Share of each address plan's /24s it flags:",
        "",
        f"- the load generators' and tests' visitors (bench.redirect.visitor_address: /8s of ISPs "
        f"and blocks no cloud announces): {_share(table, people)}",
        f"- the plan they used before (11.0.0.0-74.255.255.0): {_share(table, old_plan)}",
        f"- the public IPv4 space, uniformly (not people: how much of the space the table holds): "
        f"{_share(table, public)}",
        "",
        f"Lookup: {cost['IPv4 /24']:.1f} µs per IPv4 /24, {cost['IPv6 /48']:.1f} µs per IPv6 /48 "
        f"(one bisect, random /48s of 2000::/3 for IPv6); the table loads once in {load_s:.2f} s, "
        f"{load_mb:.1f} MB at its peak.",
        "",
        "The other rules that read no user agent, each on its own: `scanner_timing` flags 0 agents of every "
        "corpus (it reads timing and networks; its cost to people is stated as a property in "
        "tests/unit/test_sharing_domain.py); `no_accept_language` (a verdict: a browser's user agent "
        "without the header) flags 0 agents of every browser corpus modelled as what they are, browsers' "
        "navigations, which carry the header (every browser's do, webviews' and headless Chromium's too). "
        "The corpora carry no headers, so that is the model, not a measurement: the measurement is the "
        "real Chromium of tests/e2e/test_console_browser.py, whose navigation to a link carries "
        "Accept-Language and whose click counts. The one browser-header corpus found (npm "
        "header-generator's network) has no Accept-Language node (it adds the header from its locale "
        "option). What it catches of bots is not measured here either (bot corpora carry no headers).",
    ]


def report(measures: list[uacorpora.Measure], cost: dict[str, float]) -> str:
    lines = [
        "Cells per reason: verdicts given that reason / agents the rule flags on its own.",
        "",
        uacorpora.table(measures),
        "",
        "Misjudged examples (first 3 per gated corpus):",
        "",
    ]
    for m in measures:
        if m.corpus.gated and m.examples:
            for ua in m.examples[:3]:
                lines.append(f"- {m.corpus.name}: `{ua[:160]}`")
    lines += ["", "Cost of one uncached call, µs, over the Intoli browsers (every rule runs):", ""]
    lines += [f"- {reason}: {us:.0f}" for reason, us in cost.items()]
    lines += ["", *networks()]
    return "\n".join(lines)


def main() -> None:
    body = report(*run())
    print(body)
    append_results("Click verdict on labelled user-agent corpora (issue 21)", body)


if __name__ == "__main__":
    main()
