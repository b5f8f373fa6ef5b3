"""docs/capacity.md's tables, from measured figures (issue 19 item 4): ``python -m bench capacity``.

Reads the newest sections of bench/RESULTS.md that carry the inputs (nothing here is a measured
figure of its own):

- ``Pipeline: consumers vs a bare aiokafka consumer``: events/s of the metrics and gamification
  consumers (one process each draining a backlog) and of the bare aiokafka consumer;
- ``Redirect /r/{code} vs bare ASGI 302``: the redirect's req/s, p99 and app CPU per request;
- ``Click cost: ...`` (bench/click_cost.py, its JSON block): CPU per click of each service, of
  PostgreSQL and of Tansu; rows, commits and bytes per click in each service's database; WAL per
  click; broker records and bytes per click.

From them and the stated model parameters below (choices, not measurements) it computes, for 10M,
100M and 1B clicks a month, the processes, partitions, database write rates and sizes and broker
throughput, and where the first wall is; then rewrites the block of docs/capacity.md between its
markers, each input figure with the results section it comes from. ``make bench`` runs it last, so
one run refreshes the doc.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS

DOC = Path(__file__).resolve().parents[1] / "docs" / "capacity.md"
BEGIN, END = "<!-- capacity:begin (bench/capacity.py writes this block) -->", "<!-- capacity:end -->"

# -- the model's parameters: choices, stated in the doc ------------------------------------------------
MONTHLY_CLICKS = (10_000_000, 100_000_000, 1_000_000_000)
SECONDS_PER_MONTH = 30 * 86_400
# Clicks come in bursts: a post is clicked in the hours after it is shared, on working days, and a
# company-wide campaign shares one item at once. Peak (the busiest minute) to the month's average.
PEAK_TO_AVERAGE = 10.0
# A process or database server is planned to run at this share of what it was measured to do at
# most, so a peak, a rebalance or a replica down is absorbed.
UTILISATION = 0.6
KAFKA_REPLICATION = 3
KAFKA_RETENTION_DAYS = 7
# Partitions cannot be reduced later: twice the consumer processes the largest volume needs, at
# least the dev default, a multiple of it so every consumer count that divides it spreads evenly.
MIN_PARTITIONS = 6
# Every service runs at least two processes of each kind it has, so one can be down or rolling.
MIN_PROCESSES = 2
# A service's processes: its CPU per click (the click-cost part) and, for the consumers and the
# redirect, one process's measured rate (the pipeline's drain, benchmark 1's req/s).
SERVICE_PARTS: dict[str, tuple[str, str | None]] = {
    "sharing": ("sharing (redirect + verdicts)", "redirect (sharing api)"),
    "metrics": ("metrics", "metrics consumer"),
    "gamification": ("gamification", "gamification consumer"),
    "content": ("content", None),
}

# The click-cost run's parts (its CPU per click) and their names in the doc.
CORE_PARTS = {
    "sharing": "sharing (redirect + verdicts)",
    "metrics": "metrics",
    "gamification": "gamification",
    "content": "content",
    "postgres": "postgres (all databases)",
    "tansu": "tansu",
}

SECTIONS = {
    "pipeline": "Pipeline: consumers vs a bare aiokafka consumer",
    "redirect": "Redirect /r/{code} vs bare ASGI 302",
    "cost": "Click cost: CPU, database writes and bytes, broker traffic per click",
}


@dataclass
class Section:
    title: str  # with its time stamp, as in RESULTS.md
    body: str

    def ref(self) -> str:
        return f"[{self.title}](../bench/RESULTS.md)"


def sections(text: str) -> list[Section]:
    parts = re.split(r"^## ", text, flags=re.M)[1:]
    return [Section(p.split("\n", 1)[0].strip(), p.split("\n", 1)[1] if "\n" in p else "") for p in parts]


def latest(all_sections: list[Section], prefix: str, needs: str) -> Section:
    """The last section (newest appended) whose title starts with ``prefix`` and whose body has ``needs``."""
    for s in reversed(all_sections):
        if s.title.startswith(prefix) and needs in s.body:
            return s
    raise SystemExit(f"bench/RESULTS.md has no section '{prefix}...' with {needs!r}: run `python -m bench` first")


def tables(body: str) -> list[dict[str, str]]:
    """Every row of every markdown table in ``body``, as {header: cell}."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in body.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not all(set(c) <= set("-: ") for c in cells):
            rows.append(dict(zip(header, cells, strict=False)))
    return rows


def number(cell: str) -> float:
    m = re.search(r"[-\d][\d,]*\.?\d*", cell.replace("**", ""))
    if not m:
        raise ValueError(f"no number in {cell!r}")
    return float(m.group(0).replace(",", ""))


def row(rows: list[dict[str, str]], first: str) -> dict[str, str]:
    for r in rows:
        if next(iter(r.values()), "").lower().startswith(first):
            return r
    raise SystemExit(f"no row {first!r}")


def column(r: dict[str, str], *names: str) -> float:
    for header, cell in r.items():
        if any(header.lower().startswith(n) for n in names):
            return number(cell)
    raise SystemExit(f"no column {names} in {r}")


def inputs(text: str) -> dict[str, Any]:
    all_sections = sections(text)
    pipe = latest(all_sections, SECTIONS["pipeline"], "| gamification")
    redirect = latest(all_sections, SECTIONS["redirect"], "| redirect")
    cost = latest(all_sections, SECTIONS["cost"], "```json")
    prow, rrow = tables(pipe.body), row(tables(redirect.body), "redirect")
    blob = cost.body.split("```json", 1)[1].split("```", 1)[0]
    return {
        "sections": {"pipeline": pipe, "redirect": redirect, "cost": cost},
        "events_per_s": {
            "bare": column(row(prow, "bare"), "events/s"),
            "metrics": column(row(prow, "metrics"), "events/s"),
            "gamification": column(row(prow, "gamification"), "events/s"),
        },
        "redirect": {
            "req_per_s": column(rrow, "req/s"),
            "p99_ms": column(rrow, "p99"),
            "cpu_us": column(rrow, "app cpu per request"),
        },
        "cost": json.loads(blob),
    }


def ceil(x: float) -> int:
    return max(1, math.ceil(x - 1e-9))


def fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def size(b: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(b) < 1000 or unit == "PB":
            return f"{b:,.0f} {unit}" if unit == "B" else f"{b:,.1f} {unit}"
        b /= 1000
    return f"{b:.1f} PB"


def model(i: dict[str, Any]) -> dict[str, Any]:
    """Per volume: the rates and the counts they need. Per core = 1000 / CPU ms per click."""
    cost = i["cost"]
    cpu = cost["cpu_ms_per_click"]
    per_process = {
        "redirect (sharing api)": i["redirect"]["req_per_s"],
        "metrics consumer": i["events_per_s"]["metrics"],
        "gamification consumer": i["events_per_s"]["gamification"],
    }
    per_core = {"redirect (sharing api)": 1e6 / i["redirect"]["cpu_us"]}
    per_core.update({name: 1000 / cpu[part] for part, name in CORE_PARTS.items() if cpu.get(part, 0) > 0})
    broker_records = sum(t["records"] for t in cost["broker_per_click"].values())
    broker_bytes = sum(t["bytes"] for t in cost["broker_per_click"].values())
    out = []
    for monthly in MONTHLY_CLICKS:
        avg = monthly / SECONDS_PER_MONTH
        peak = avg * PEAK_TO_AVERAGE
        cores = {name: peak / (rate * UTILISATION) for name, rate in per_core.items()}
        processes = {}
        for svc, (core_part, drain_part) in SERVICE_PARTS.items():
            need = [MIN_PROCESSES]
            if core_part in cores:  # one Python process uses one core at most
                need.append(ceil(cores[core_part]))
            if drain_part is not None:
                need.append(ceil(peak / (per_process[drain_part] * UTILISATION)))
            processes[svc] = max(need)
        dbs = {
            svc: {
                "rows_per_s": peak * d["rows_written"],
                "commits_per_s": peak * d["commits"],
                "growth_per_month": monthly * d["table_bytes"],
            }
            for svc, d in cost["db_per_click"].items()
        }
        out.append(
            {
                "monthly": monthly,
                "avg": avg,
                "peak": peak,
                "processes": processes,
                "cores": cores,
                "dbs": dbs,
                "wal_per_s": peak * cost["wal_bytes_per_click"],
                "broker_records_per_s": peak * broker_records,
                "broker_bytes_per_s": peak * broker_bytes,
                "broker_storage": monthly / 30 * KAFKA_RETENTION_DAYS * broker_bytes * KAFKA_REPLICATION,
            }
        )
    # the services that consume the click topics (sharing's verdict worker: the raw clicks)
    consumers_at_most = max(v["processes"][svc] for v in out for svc in ("sharing", "metrics", "gamification"))
    partitions = MIN_PARTITIONS * math.ceil(2 * consumers_at_most / MIN_PARTITIONS)
    # The first wall: the part whose one process (or one PostgreSQL core) is full at the smallest
    # monthly volume.
    walls = {
        f"one {name} process": rate * UTILISATION / PEAK_TO_AVERAGE * SECONDS_PER_MONTH
        for name, rate in per_process.items()
    }
    walls.update(
        {
            f"one core of {name}": rate * UTILISATION / PEAK_TO_AVERAGE * SECONDS_PER_MONTH
            for name, rate in per_core.items()
        }
    )
    return {
        "per_process": per_process,
        "per_core": per_core,
        "volumes": out,
        "partitions": partitions,
        "walls": sorted(walls.items(), key=lambda kv: kv[1]),
        "broker_records": broker_records,
        "broker_bytes": broker_bytes,
    }


def render(i: dict[str, Any], m: dict[str, Any]) -> str:
    s = i["sections"]
    cost = i["cost"]
    vols = m["volumes"]
    head = "| | " + " | ".join(f"{v['monthly'] / 1e6:,.0f}M clicks/month" for v in vols) + " |"
    sep = "| --- |" + " ---: |" * len(vols)
    lines = [
        "### Measured inputs",
        "",
        "| figure | value | from |",
        "| --- | ---: | --- |",
        f"| bare aiokafka consumer, one process | {fmt(i['events_per_s']['bare'])} events/s | {s['pipeline'].ref()} |",
    ]
    for name, rate in m["per_process"].items():
        src = s["redirect"] if name.startswith("redirect") else s["pipeline"]
        unit = "req/s" if name.startswith("redirect") else "events/s"
        lines.append(f"| {name}, one process | {fmt(rate)} {unit} | {src.ref()} |")
    lines.append(f"| redirect p99 at that rate | {fmt(i['redirect']['p99_ms'])} ms | {s['redirect'].ref()} |")
    lines.append(f"| redirect app CPU per request | {fmt(i['redirect']['cpu_us'])} µs | {s['redirect'].ref()} |")
    for name, ms in cost["cpu_ms_per_click"].items():
        lines.append(f"| CPU per click: {name} | {ms:.3f} ms | {s['cost'].ref()} |")
    for svc, d in cost["db_per_click"].items():
        lines.append(
            f"| {svc} database per click | {d['rows_written']:.2f} rows written, {d['commits']:.3f} commits, "
            f"{d['table_bytes']:.0f} bytes | {s['cost'].ref()} |"
        )
    lines.append(f"| WAL per click (all databases) | {cost['wal_bytes_per_click']:.0f} bytes | {s['cost'].ref()} |")
    lines.append(
        f"| broker per click (all topics) | {m['broker_records']:.2f} records, {m['broker_bytes']:.0f} bytes "
        f"| {s['cost'].ref()} |"
    )
    lines += [
        "",
        "### Per process and per core",
        "",
        "Per core = 1,000 / CPU ms per click (the click-cost run), i.e. clicks a second one fully busy core",
        "takes; per process = the measured drain or request rate of one process.",
        "",
        "| part | clicks/s per process | clicks/s per core |",
        "| --- | ---: | ---: |",
    ]
    names = sorted(set(m["per_core"]) | set(m["per_process"]))
    for name in names:
        pp = m["per_process"].get(name)
        pc = m["per_core"].get(name)
        lines.append(f"| {name} | {fmt(pp) if pp else '—'} | {fmt(pc) if pc else '—'} |")
    lines += [
        "",
        f"### Sizing (peak = {PEAK_TO_AVERAGE:g} times the month's average; every part planned at "
        f"{UTILISATION:.0%} of its measured maximum)",
        "",
        f"A service's processes: at least {MIN_PROCESSES}, at least its cores (one Python process uses one",
        "core at most), and for the consumers and the redirect at least the peak over one process's",
        "measured rate. The partitions: twice the most processes a click consumer needs at the largest",
        f"volume, a multiple of {MIN_PARTITIONS}.",
        "",
        head,
        sep,
        "| average clicks/s | " + " | ".join(fmt(v["avg"]) for v in vols) + " |",
        "| peak clicks/s | " + " | ".join(fmt(v["peak"]) for v in vols) + " |",
    ]
    for svc in SERVICE_PARTS:
        lines.append(f"| {svc} processes | " + " | ".join(str(v["processes"][svc]) for v in vols) + " |")
    for name in m["per_core"]:
        lines.append(f"| cores for {name} | " + " | ".join(fmt(v["cores"][name]) for v in vols) + " |")
    lines.append(f"| partitions per click topic | {m['partitions']} (set once for the largest) | | |")
    for svc in cost["db_per_click"]:
        lines.append(
            f"| {svc} DB rows written/s at peak | " + " | ".join(fmt(v["dbs"][svc]["rows_per_s"]) for v in vols) + " |"
        )
        lines.append(
            f"| {svc} DB commits/s at peak | " + " | ".join(fmt(v["dbs"][svc]["commits_per_s"]) for v in vols) + " |"
        )
        lines.append(
            f"| {svc} DB growth per month | " + " | ".join(size(v["dbs"][svc]["growth_per_month"]) for v in vols) + " |"
        )
    lines += [
        "| WAL at peak (all databases) | " + " | ".join(size(v["wal_per_s"]) + "/s" for v in vols) + " |",
        "| broker records/s at peak | " + " | ".join(fmt(v["broker_records_per_s"]) for v in vols) + " |",
        "| broker bytes in at peak (before replication) | "
        + " | ".join(size(v["broker_bytes_per_s"]) + "/s" for v in vols)
        + " |",
        f"| broker storage, {KAFKA_RETENTION_DAYS} days, {KAFKA_REPLICATION} replicas | "
        + " | ".join(size(v["broker_storage"]) for v in vols)
        + " |",
        "",
        "### Where the walls are",
        "",
        "The monthly volume at which one process (or one core) of each part is full at the planned",
        "utilisation, smallest first:",
        "",
        "| part | full at clicks/month |",
        "| --- | ---: |",
    ]
    for name, monthly in m["walls"]:
        lines.append(f"| {name} | {monthly / 1e6:,.0f}M |")
    first, at = m["walls"][0]
    lines += ["", f"**First wall: {first}, at {at / 1e6:,.0f}M clicks a month.**"]
    return "\n".join(lines)


def main() -> None:
    i = inputs(RESULTS.read_text())
    block = render(i, model(i))
    if "--print" in sys.argv[1:]:
        print(block)
        return
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOC} has no {BEGIN} ... {END} block")
    before, rest = doc.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{block}\n{END}{after}")
    print(block)
    print(f"\nwrote {DOC}")


if __name__ == "__main__":
    main()
