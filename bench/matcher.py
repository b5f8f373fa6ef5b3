"""The policy matcher: µs per 1,000 characters at 2,000 blocked terms, old and new side by side.

``python -m bench matcher``. The old matcher is the one issue 12 replaced, kept unchanged as the
tests' reference (``tests/support/policy_reference.py``). Three term lists of 2,000 terms:

- shared first word: the issue's hostile policy (every term starts with "acme"), against a message
  where "acme" (and look-alikes of it) is frequent;
- unrelated words: an ordinary list;
- many readings: an adversarial list built for the new matcher's worst case (terms made of the four
  readings "iai", "ai", "ia", "a" of the token "!a!", 5 words each), against a text of "!a!" tokens;
  the step budget (``STEPS_PER_TOKEN``) stops it, so it is timed to where it stops. The old matcher
  has no budget: its figure is the whole text.

Each cell: the best of ``ROUNDS`` timed passes (fewer once 10 s are spent) over 4,000-character
messages (compiled matcher cached, as in the service). Then the service's path: the same check through the process pool
(``advocacy_common.policycheck``), its round trip, how long the event loop went without a tick while
checks ran, and the worker's RSS.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advocacy_common import offload, policycheck
from advocacy_common.networks import Network
from advocacy_common.policy import UNCHECKED, MatchStats, Policy, find_blocked_terms
from bench.common import append_results
from tests.support import policy_reference as reference

TERMS = 2000
CHARS = 4000
ROUNDS = 5
MESSAGES = 5


def _shared_first_word(rng: random.Random) -> tuple[tuple[str, ...], list[str]]:
    terms = tuple(f"acme {rng.choice('bcdfg')}{rng.randrange(10**6)} {rng.randrange(1000)}" for _ in range(TERMS))
    words = ["acme", "Acme!", "@cme", "launch", "news", "today", "$acme$", "b12", "team"]
    return terms, [_text(rng, words) for _ in range(MESSAGES)]


def _unrelated(rng: random.Random) -> tuple[tuple[str, ...], list[str]]:
    vocab = [f"w{rng.randrange(10**6)}" for _ in range(3000)]
    terms = tuple(" ".join(rng.sample(vocab, rng.randint(1, 3))) for _ in range(TERMS))
    return terms, [_text(rng, [*vocab[:200], "the", "launch", "news"]) for _ in range(MESSAGES)]


def _many_readings(rng: random.Random) -> tuple[tuple[str, ...], list[str]]:
    readings = ["iai", "ai", "ia", "a"]
    combos = [" ".join(c) for c in itertools.product(readings, repeat=5)]
    terms = tuple(rng.sample(combos, min(TERMS, len(combos))))
    terms += tuple(f"{t} zz{k}" for k, t in enumerate(rng.choices(combos, k=TERMS - len(terms))))
    return terms, [_text(rng, ["!a!"]) for _ in range(MESSAGES)]


def _text(rng: random.Random, words: list[str]) -> str:
    out: list[str] = []
    n = 0
    while n < CHARS:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:CHARS]


def _us_per_1000(fn: Callable[[tuple[str, ...], str], Any], terms: tuple[str, ...], texts: list[str]) -> float:
    fn(terms, texts[0])  # compile (both matchers cache the compiled list)
    best = float("inf")
    spent = 0.0
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for t in texts:
            fn(terms, t)
        took = time.perf_counter() - began
        best, spent = min(best, took), spent + took
        if spent > 10:  # the old matcher on a hostile list: seconds per pass, fewer passes are enough
            break
    return best * 1e6 / (sum(map(len, texts)) / 1000)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _through_the_pool(terms: tuple[str, ...], texts: list[str]) -> dict[str, float]:
    policy = Policy(version=1, blocked_terms=terms)
    await policycheck.check(policy, Network.email, texts[0])  # start the worker, compile there
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    # the loop's gaps with nothing to do, for as long as the checks below take: the machine's own noise
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(2.0)
    stop.set()
    await tick
    idle_gap = max(gaps)
    gaps.clear()
    stop.clear()
    tick = asyncio.create_task(ticker())
    trips: list[float] = []
    for _ in range(4):
        for t in texts:
            began = time.perf_counter()
            await policycheck.check(policy, Network.email, t)
            trips.append(time.perf_counter() - began)
    began = time.perf_counter()
    await asyncio.gather(*(policycheck.check(policy, Network.email, t) for t in texts * 4))
    burst = time.perf_counter() - began
    stop.set()
    await tick
    worker = await offload.POOL.run(os.getpid)
    return {
        "trip_p50_ms": statistics.median(trips) * 1000,
        "trip_max_ms": max(trips) * 1000,
        "burst_ms": burst * 1000,
        "burst_n": len(texts) * 4,
        "max_gap_ms": max(gaps) * 1000,
        "idle_gap_ms": idle_gap * 1000,
        "worker_rss_mb": _rss_mb(worker),
    }


def run() -> dict[str, Any]:
    rng = random.Random(12)
    rows: list[dict[str, Any]] = []
    for name, build in (
        ("shared first word", _shared_first_word),
        ("unrelated words", _unrelated),
        ("many readings (new matcher's worst case)", _many_readings),
    ):
        terms, texts = build(rng)
        for t in texts:
            new = find_blocked_terms(terms, t)
            if new and new[-1].message == UNCHECKED:  # stopped by the budget: the same up to there
                old = reference.find_blocked_terms(terms, t)
                assert new[:-1] == [v for v in old if v.span[0] < new[-1].span[0]]
            else:
                assert new == reference.find_blocked_terms(terms, t)
        stats = MatchStats()
        for t in texts:
            find_blocked_terms(terms, t, stats)
        rows.append(
            {
                "name": name,
                "old": _us_per_1000(reference.find_blocked_terms, terms, texts),
                "new": _us_per_1000(find_blocked_terms, terms, texts),
                "steps_per_token": stats.steps / max(1, stats.tokens),
            }
        )
    terms, texts = _shared_first_word(random.Random(12))
    pool = asyncio.run(_run_pool(terms, texts))
    return {"rows": rows, "pool": pool}


async def _run_pool(terms: tuple[str, ...], texts: list[str]) -> dict[str, float]:
    try:
        return await _through_the_pool(terms, texts)
    finally:
        await offload.POOL.shutdown()


def report(r: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"`nproc` {os.cpu_count()}, load average (1, 5, 15 min) at the end: {load}.",
        f"{TERMS:,} blocked terms, {MESSAGES} messages of {CHARS:,} characters, best of up to {ROUNDS} passes, "
        "one process.",
        "",
        "| term list | old matcher µs / 1,000 chars | new matcher µs / 1,000 chars | old / new "
        "| new: trie steps per token |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['name']} | {row['old']:,.0f} | {row['new']:,.0f} | {row['old'] / row['new']:,.1f}x "
            f"| {row['steps_per_token']:.1f} |"
        )
    p = r["pool"]
    lines += [
        "",
        f"Through the process pool (`policycheck.check`, 1 worker, shared-first-word list): round trip p50 "
        f"{p['trip_p50_ms']:.1f} ms, max {p['trip_max_ms']:.1f} ms; {p['burst_n']} checks at once "
        f"{p['burst_ms']:.0f} ms; the event loop's longest gap between 1 ms ticks meanwhile "
        f"{p['max_gap_ms']:.1f} ms (idle, in the 2 s before: {p['idle_gap_ms']:.1f} ms); "
        f"worker RSS {p['worker_rss_mb']:.0f} MB.",
    ]
    return "\n".join(lines)


def main() -> None:
    body = report(run())
    print(body)
    append_results("Policy matcher: µs per 1,000 characters at 2,000 terms, old vs new", body)


if __name__ == "__main__":
    main()
