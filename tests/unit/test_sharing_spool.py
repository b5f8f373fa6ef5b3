"""The click journal: append, read from the cursor, survive restarts, rewind, purge."""

from pathlib import Path

import orjson

from advocacy_common.events.base import decode as decode_event
from advocacy_common.events.sharing import ClickReceived
from advocacy_sharing.adapters.emitter import headers_of
from advocacy_sharing.adapters.spool import ClickJournal, Position, decode, encode


def line(i: int, tenant: str = "t-1") -> bytes:
    value = orjson.dumps(
        {
            "click_id": f"c{i}",
            "code": "AbCdEfGhIj",
            "received_at": "2026-03-01T12:00:00+00:00",
            "visitor": "v",
            "visitor_prev": "vp",
            "user_agent": "ua\twith tab",
            "method": "GET",
            "referrer": None,
            "country": None,
            "edge_verdict": None,
        }
    )
    return encode(tenant, f"c{i}", "AbCdEfGhIj", "2026-03-01T12:00:00+00:00", value)


def test_records_come_back_in_order_and_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    j = ClickJournal(tmp_path)
    j.open()
    for i in range(10):
        j.append(line(i))
    recs, pos = j.read(max_records=4)
    assert [r.click_id for r in recs] == ["c0", "c1", "c2", "c3"]
    j.advance(pos)
    j.close()

    again = ClickJournal(tmp_path)
    again.open()  # a new process: a new segment, the old one still to send from the cursor
    again.append(line(10))
    recs, pos = again.read()
    assert [r.click_id for r in recs] == [f"c{i}" for i in range(4, 11)]
    assert not again.caught_up()
    again.advance(pos)
    assert again.caught_up()
    assert again.read()[0] == []
    again.close()


def test_a_torn_last_line_of_an_old_segment_is_skipped(tmp_path: Path) -> None:
    j = ClickJournal(tmp_path)
    j.open()
    j.append(line(1))
    j.append(line(2)[:20])  # the process died mid-write
    j.close()
    j2 = ClickJournal(tmp_path)
    j2.open()
    j2.append(line(3))
    recs, pos = j2.read()
    ids = [r.click_id for r in recs]
    j2.advance(pos)
    recs, _ = j2.read()
    ids += [r.click_id for r in recs]
    assert ids == ["c1", "c3"]
    j2.close()


def test_two_processes_get_two_slots(tmp_path: Path) -> None:
    a, b = ClickJournal(tmp_path), ClickJournal(tmp_path)
    a.open()
    b.open()
    assert a.dir != b.dir
    a.close()
    b.close()


def test_rewind_resends_everything_retained_and_purge_keeps_unsent(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    j = ClickJournal(tmp_path, retention_seconds=100, segment_seconds=10, clock=lambda: clock[0])
    j.open()
    j.append(line(1))
    clock[0] += 20
    j.maybe_roll()
    j.append(line(2))
    recs, pos = j.read()
    j.advance(pos)
    recs2, pos2 = j.read()
    j.advance(pos2)
    assert [r.click_id for r in recs + recs2] == ["c1", "c2"]
    j.rewind()
    assert j.cursor == Position(j.segments()[0], 0)
    recs, pos = j.read()
    assert [r.click_id for r in recs] == ["c1", "c2"]
    assert j.purge() == 0  # rewound: nothing is fully sent
    j.advance(pos)
    assert j.purge() == 0  # sent, but younger than the retention
    clock[0] += 200
    import os

    for seg in j.segments():
        os.utime(j.dir / f"{seg:012d}.log", (clock[0] - 150, clock[0] - 150))
    assert j.purge() == 1  # the old segment goes, the live one stays
    assert len(j.segments()) == 1
    j.close()


def test_the_record_is_the_event_the_consumer_decodes() -> None:
    rec = decode(line(7, tenant="t-\ttab"))
    assert rec is not None and rec.tenant_id == "t-\ttab"
    env = decode_event(headers_of(rec), rec.value)
    assert isinstance(env.data, ClickReceived)
    assert env.id == "c7" and env.tenant_id == "t-\ttab" and env.source == "/advocacy/sharing"
    assert env.data.user_agent == "ua\twith tab" and env.data.visitor_prev == "vp"


def test_over_max_bytes_sent_segments_go_oldest_first_and_unsent_ones_never(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    size = len(line(0))
    j = ClickJournal(tmp_path, segment_seconds=10, max_bytes=3 * size, clock=lambda: clock[0])
    j.open()
    for i in range(6):  # six one-line segments
        j.append(line(i))
        clock[0] += 20
        j.maybe_roll()
    first = j.segments()
    # the first four are sent: the journal holds 6 lines, 3 allowed -> the three oldest sent ones go
    for _ in range(4):
        _, pos = j.read(max_records=1)
        j.advance(pos)
    assert j.purge() == 3
    assert j.segments() == first[3:] and j.total_bytes() == 3 * size
    # nothing more is sent while the broker is away: over the limit, yet the unsent lines stay
    for i in range(6, 12):
        j.append(line(i))
    assert j.purge() == 0  # what is left is unsent (or the cursor's own segment): kept, over the limit or not
    assert j.total_bytes() == sum(len(line(i)) for i in range(3, 12))
    recs, _ = j.read()
    assert [r.click_id for r in recs] == ["c4", "c5", *(f"c{i}" for i in range(6, 12))]
    assert 0.0 < j.volume_free_ratio() <= 1.0
    j.close()
