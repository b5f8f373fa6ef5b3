"""bench/capacity.py: docs/capacity.md's tables come from the newest measured sections of
bench/RESULTS.md, and the sizing arithmetic is what the doc says it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import capacity

COST = {
    "clicks": 1000,
    "cpu_ms_per_click": {
        "content": 0.1,
        "sharing": 0.5,
        "metrics": 0.2,
        "gamification": 0.4,
        "postgres": 0.25,
        "tansu": 0.0,
    },
    "db_per_click": {
        "sharing": {
            "rows_written": 2.0,
            "commits": 0.01,
            "table_bytes": 500.0,
            "inserted": 2,
            "updated": 0,
            "deleted": 0,
        }
    },
    "wal_bytes_per_click": 1000.0,
    "broker_per_click": {"advocacy.clicks": {"records": 1.0, "bytes": 700.0}},
}


def results(gamification: str = "6,000", cost: dict[str, object] = COST) -> str:
    return f"""# Benchmark results

## Pipeline: consumers vs a bare aiokafka consumer — 2026-12-01 10:00 UTC

| consumer | events/s | ratio to bare |
|---|---|---|
| bare aiokafka (read + parse + commit) | 100,000 | 1.00 |
| metrics | 10,000 | 0.10 |
| gamification | 1,000 | 0.01 |

## Redirect /r/{{code}} vs bare ASGI 302 — 2026-12-01 10:05 UTC

| app | req/s | p50 | p99 | non-3xx | app CPU per request |
| --- | ---: | ---: | ---: | ---: | ---: |
| bare | 20,000 | 2 ms | 4 ms | 0 | 40 µs |
| redirect | 10,000 | 4 ms | 8.5 ms | 0 | 100 µs |

## Pipeline: consumers vs a bare aiokafka consumer — 2026-12-02 10:00 UTC

| consumer | events/s | ratio to bare | applied (exact?) |
|---|---|---|---|
| bare aiokafka (read + parse + commit) | 100,000 | 1.00 | — |
| metrics | **30,000** | 0.30 | 200,000 (exact) |
| gamification | {gamification} | 0.06 | 200,000 (exact) |

## Click cost: CPU, database writes and bytes, broker traffic per click — 2026-12-02 11:00 UTC

```json
{json.dumps(cost)}
```
"""


def test_the_newest_sections_are_the_inputs_each_with_its_title() -> None:
    i = capacity.inputs(results())
    assert i["events_per_s"] == {"bare": 100_000, "metrics": 30_000, "gamification": 6_000}
    assert i["redirect"] == {"req_per_s": 10_000, "p99_ms": 8.5, "cpu_us": 100}
    assert i["sections"]["pipeline"].title.endswith("2026-12-02 10:00 UTC")
    assert i["cost"]["wal_bytes_per_click"] == 1000.0


def test_the_sizing_follows_the_stated_parameters() -> None:
    m = capacity.model(capacity.inputs(results()))
    billion = m["volumes"][-1]
    assert billion["monthly"] == 1_000_000_000
    assert billion["peak"] == pytest.approx(1e9 / (30 * 86400) * capacity.PEAK_TO_AVERAGE)
    # 3,858 clicks/s at peak: gamification needs 2.57 cores (0.4 ms a click at 60 %), so 3 processes
    # (its drain rate alone would say 2); metrics 1.29 cores, so 2; sharing 3.2 cores, so 4
    assert billion["processes"] == {"gamification": 3, "metrics": 2, "sharing": 4, "content": 2}
    assert m["volumes"][0]["processes"] == {"gamification": 2, "metrics": 2, "sharing": 2, "content": 2}
    assert billion["cores"]["sharing (redirect + verdicts)"] == pytest.approx(3858.0 * 0.5 / 1000 / 0.6, rel=1e-3)
    assert billion["dbs"]["sharing"]["growth_per_month"] == 1e9 * 500
    assert m["partitions"] == 12  # twice sharing's 4, a multiple of 6
    # the first wall: the part whose one core is full at the smallest volume (sharing, 0.5 ms a click)
    assert m["walls"][0][0] == "one core of sharing (redirect + verdicts)"
    assert m["walls"][0][1] == pytest.approx(2000 * 0.6 / capacity.PEAK_TO_AVERAGE * 30 * 86400)


def test_a_missing_input_says_which_benchmark_to_run() -> None:
    text = results().split("## Click cost")[0]
    with pytest.raises(SystemExit, match="Click cost"):
        capacity.inputs(text)


def test_the_doc_block_is_replaced_between_its_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "capacity.md"
    doc.write_text(f"intro\n{capacity.BEGIN}\nold\n{capacity.END}\noutro\n")
    source = tmp_path / "RESULTS.md"
    source.write_text(results())
    monkeypatch.setattr(capacity, "DOC", doc)
    monkeypatch.setattr(capacity, "RESULTS", source)
    monkeypatch.setattr("sys.argv", ["capacity"])
    capacity.main()
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert "2026-12-02 11:00 UTC" in text  # every input names its section
