"""Issue 19's acceptance in one dated section: ``python -m bench targets`` (``make bench`` runs it last;
``python -m bench.targets --print`` shows it without appending).

It measures nothing. It reads the sections the benchmarks of this run appended to bench/RESULTS.md
(``make bench`` passes its start as ``BENCH_RUN_STARTED``; run alone, the newest section of each
kind) and writes one section: each target, the figure it was judged on, met or not, and the section
it comes from. The figures are the benchmarks' own; a missing section is a target not met.

- Pipeline (benchmark 2): metrics >= 0.30 and gamification >= 0.20 of the bare consumer, in the same
  run, every drain exact, RSS after draining < 150 MB.
- Click -> SSE (``bench.latency``): p99 < 1 s at 1,000 clicks/s for 60 s, or else the best rate
  measured at which it is (with every click on the board); its stage table is in its section.
- Memory (benchmark 3): every process under 150 MB.
- Metrics reads: every API read p99 < 200 ms on the 100,000-employee dataset (the benchmark's own
  verdict line, which names the reads it leaves aside and why).
- Redirect (benchmark 1): >= 0.5 of the bare ASGI app's req/s, p99 < 20 ms.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.capacity import Section, number, sections, tables
from bench.common import RESULTS, append_results

TITLE = "Issue 19 targets: this make bench run's figures"
PIPELINE = "Pipeline: consumers vs a bare aiokafka consumer"
LATENCY = "Click -> SSE latency by stage, against the budget"
MEMORY = "Memory: each service and the console, idle and at the end of benchmark 3"
READS = "Metrics reads: a year of 100,000 employees, 1M shares, 10M clicks"
REDIRECT = "Redirect /r/{code} vs bare ASGI 302"

RATIO_TARGETS = {"metrics": 0.30, "gamification": 0.20}
RSS_MB = 150.0
SSE_P99_MS = 1000.0
SSE_RATE = 1000
REDIRECT_RATIO = 0.5
REDIRECT_P99_MS = 20.0

_STAMP = re.compile(r"— (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC$")
_RATE = re.compile(r"^### (\d+) clicks/s: .*all on the board: (yes|\*\*no\*\*)", re.M)
_REDIRECT = re.compile(r"\*\*Ratio redirect / bare: ([\d.]+)\*\*.*?redirect p99 ([\d.,]+) ms")
_READS = re.compile(r"\*\*Every API read p99 < \d+ ms .*?: (met|NOT met: .*?)\.\*\*", re.S)


@dataclass
class Target:
    name: str
    figure: str
    met: bool
    source: Section | None


def stamp(s: Section) -> datetime | None:
    m = _STAMP.search(s.title)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC) if m else None


def newest(all_sections: list[Section], title: str, since: datetime | None) -> Section | None:
    """The newest section titled exactly ``title`` (plus its stamp), at or after ``since``."""
    for s in reversed(all_sections):
        at = stamp(s)
        if s.title.split(" — ")[0] == title and at is not None and (since is None or at >= since):
            return s
    return None


def missing(name: str, title: str) -> Target:
    return Target(name, f"no '{title}' section from this run", False, None)


def ratio_name(svc: str, target: float) -> str:
    return f"{svc} ≥ {target:.2f} of bare, exact, RSS < {RSS_MB:.0f} MB"


def pipeline(s: Section | None) -> list[Target]:
    if s is None:
        return [missing(ratio_name(svc, t), PIPELINE) for svc, t in RATIO_TARGETS.items()]
    rows = {r["consumer"]: r for r in tables(s.body) if "consumer" in r}
    out = []
    for svc, target in RATIO_TARGETS.items():
        name = ratio_name(svc, target)
        r = rows.get(svc)
        if r is None:
            out.append(Target(name, "no row in its table", False, s))
            continue
        ratio, rss = number(r["ratio to bare"]), number(r["RSS after"])
        exact = "(exact)" in r["applied (exact?)"]
        figure = f"{ratio:.2f} of bare ({r['ratio to bare']}), {'exact' if exact else 'NOT exact'}, RSS {rss:.0f} MB"
        out.append(Target(name, figure, ratio >= target and exact and rss < RSS_MB, s))
    return out


def latency(s: Section | None) -> Target:
    name = f"click -> SSE p99 < {SSE_P99_MS / 1000:.0f} s at {SSE_RATE:,} clicks/s (else the best rate)"
    if s is None:
        return missing(name, LATENCY)
    p99: dict[int, float] = {}
    settled: dict[int, bool] = {}
    blocks = _RATE.split(s.body)  # [head, rate, settled, body, rate, settled, body, ...]
    for i in range(1, len(blocks) - 2, 3):
        rate, ok, body = int(blocks[i]), blocks[i + 1] == "yes", blocks[i + 2]
        total = [r for r in tables(body) if r.get("stage") == "total"]
        if total:
            p99[rate], settled[rate] = number(total[0]["p99 ms"]), ok
    if not p99:
        return Target(name, "no rate's total in its section", False, s)
    good = [rate for rate in p99 if p99[rate] < SSE_P99_MS and settled[rate]]
    each = ", ".join(f"{rate:,}/s {p99[rate]:,.0f} ms" for rate in sorted(p99, reverse=True))
    if SSE_RATE in good:
        return Target(name, f"p99 at {SSE_RATE:,}/s: {p99[SSE_RATE]:,.0f} ms ({each})", True, s)
    best = max(good, default=None)
    figure = (f"best rate under 1 s: {best:,}/s" if best else "no rate under 1 s") + f" ({each})"
    return Target(name, figure, best is not None, s)


def memory(s: Section | None) -> Target:
    name = f"every process < {RSS_MB:.0f} MB at the end of benchmark 3"
    if s is None:
        return missing(name, MEMORY)
    rows = [r for r in tables(s.body) if "under 150 MB?" in r]
    over = [r["process"] for r in rows if r["under 150 MB?"] != "yes"]
    ends = ", ".join(f"{r['process']} {r['at its end (trimmed)'].split(' (')[0]}" for r in rows)
    return Target(name, ("over: " + ", ".join(over) + "; " if over else "") + ends, bool(rows) and not over, s)


def reads(s: Section | None) -> Target:
    name = "every metrics read p99 < 200 ms (100,000 employees)"
    if s is None:
        return missing(name, READS)
    m = _READS.search(s.body)
    if m is None:
        return Target(name, "no verdict line in its section", False, s)
    return Target(name, m.group(1), m.group(1) == "met", s)


def redirect(s: Section | None) -> Target:
    name = f"redirect ≥ {REDIRECT_RATIO} of bare, p99 < {REDIRECT_P99_MS:.0f} ms"
    if s is None:
        return missing(name, REDIRECT)
    m = _REDIRECT.search(s.body)
    if m is None:
        return Target(name, "no ratio line in its section", False, s)
    ratio, p99 = float(m.group(1)), number(m.group(2))
    return Target(name, f"{ratio:.2f} of bare, p99 {p99:.2f} ms", ratio >= REDIRECT_RATIO and p99 < REDIRECT_P99_MS, s)


def judge(text: str, since: datetime | None) -> list[Target]:
    all_sections = sections(text)

    def pick(title: str) -> Section | None:
        return newest(all_sections, title, since)

    return [
        *pipeline(pick(PIPELINE)),
        latency(pick(LATENCY)),
        memory(pick(MEMORY)),
        reads(pick(READS)),
        redirect(pick(REDIRECT)),
    ]


def report(targets: list[Target], since: datetime | None) -> str:
    lines = [
        (
            f"The sections `make bench` appended from {since:%Y-%m-%d %H:%M} UTC on"
            if since
            else "The newest section of each kind"
        )
        + " (bench/targets.py reads them; it measures nothing itself).",
        "",
        "| target | this run | met? | section |",
        "| --- | --- | --- | --- |",
    ]
    for t in targets:
        where = t.source.title if t.source else "-"
        lines.append(f"| {t.name} | {t.figure} | {'yes' if t.met else '**no**'} | {where} |")
    met = sum(t.met for t in targets)
    lines += ["", f"**{met} of {len(targets)} targets met{'' if met < len(targets) else ': all'}.**"]
    return "\n".join(lines)


def main() -> None:
    started = os.environ.get("BENCH_RUN_STARTED")
    since = datetime.strptime(started, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) if started else None
    body = report(judge(RESULTS.read_text(), since), since)
    print(body)
    if "--print" not in sys.argv[1:]:
        append_results(TITLE, body)


if __name__ == "__main__":
    main()
